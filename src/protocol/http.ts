/** HTTP request and response bodies: zod schemas (validation at the edge) and the types the SDK shares. */
import * as z from "zod";
import { isBase64 } from "./base64";
import { LIMITS } from "./limits";

/** Standard padded base64 of exactly `bytes` bytes (or any length when omitted). */
export const base64Bytes = (what: string, bytes?: number) =>
  z.string().refine(isBase64, { message: `${what} must be standard padded base64` }).refine(
    (s) => bytes === undefined || s.length === Math.ceil(bytes / 3) * 4,
    { message: `${what} must be ${bytes} bytes` },
  );

const keyId = z.number().int().min(0).max(0xffffff);

export const signedPreKeySchema = z.object({
  keyId,
  publicKey: z.string(),
  signature: z.string(),
});

export const preKeySchema = z.object({ keyId, publicKey: z.string() });

/** The public keys a device registers: the formats of Signal's library (see SIGNAL-COMPAT.md). */
export const deviceKeysSchema = z.object({
  /** Signal's 14-bit registration id; changes when a device is re-registered. */
  registrationId: z.number().int().min(1).max(16380),
  identityKey: z.string(),
  signedPreKey: signedPreKeySchema,
  kyberLastResortPreKey: signedPreKeySchema,
  preKeys: z.array(preKeySchema).max(LIMITS.maxPreKeysPerUpload).default([]),
  kyberPreKeys: z.array(signedPreKeySchema).max(LIMITS.maxPreKeysPerUpload).default([]),
});
export type DeviceKeys = z.infer<typeof deviceKeysSchema>;
export type SignedPreKey = z.infer<typeof signedPreKeySchema>;
export type PreKey = z.infer<typeof preKeySchema>;

const deviceName = z.string().min(1).max(64).optional();

export const requestCodeSchema = z.object({ phone: z.string().max(32) });
export type RequestCodeBody = z.infer<typeof requestCodeSchema>;

export const verifyCodeSchema = z.object({
  phone: z.string().max(32),
  code: z.string().regex(/^\d{6}$/, "code must be 6 digits"),
  name: deviceName,
  device: deviceKeysSchema,
});
export type VerifyCodeBody = z.infer<typeof verifyCodeSchema>;

export const linkDeviceSchema = z.object({
  code: z.string().min(16).max(128),
  name: deviceName,
  device: deviceKeysSchema,
});
export type LinkDeviceBody = z.infer<typeof linkDeviceSchema>;

export const refreshSchema = z.object({ refreshToken: z.string().min(16).max(128) });

/** Returned by registration, linking and refresh. */
export interface Session {
  userId: string;
  deviceId: number;
  accessToken: string;
  /** Access token expiry, ms since the epoch. */
  accessTokenExpiresAt: number;
  refreshToken: string;
}

export const uploadKeysSchema = z.object({
  signedPreKey: signedPreKeySchema.optional(),
  kyberLastResortPreKey: signedPreKeySchema.optional(),
  preKeys: z.array(preKeySchema).max(LIMITS.maxPreKeysPerUpload).optional(),
  kyberPreKeys: z.array(signedPreKeySchema).max(LIMITS.maxPreKeysPerUpload).optional(),
});
export type UploadKeysBody = z.infer<typeof uploadKeysSchema>;

export interface PreKeyCounts {
  preKeys: number;
  kyberPreKeys: number;
}

/** One device's part of a prekey bundle, as libsignal's `PreKeyBundle` needs it. */
export interface DeviceBundle {
  deviceId: number;
  registrationId: number;
  identityKey: string;
  signedPreKey: SignedPreKey;
  /** A one-time Kyber prekey while any is left, else the last-resort one (`lastResort: true`). */
  kyberPreKey: SignedPreKey & { lastResort: boolean };
  /** A one-time EC prekey while any is left. */
  preKey?: PreKey;
}

export interface PreKeyBundleResponse {
  userId: string;
  devices: DeviceBundle[];
}

export interface DeviceInfo {
  deviceId: number;
  registrationId: number;
  name: string | null;
  createdAt: number;
}

export const settingsSchema = z.object({ readReceipts: z.boolean() }).partial();
export type Settings = { readReceipts: boolean };

export interface LinkCodeResponse {
  code: string;
  expiresAt: number;
}
