/**
 * WebSocket frames on `/v1/connect`: JSON text frames, one object each, discriminated by `type`.
 * Heartbeat: the client sends the exact text `{"type":"ping"}` and gets `{"type":"pong"}`
 * without waking the user's Durable Object.
 */
import * as z from "zod";
import { isBase64 } from "./base64";
import type { DeviceMismatch, ErrorCode } from "./errors";
import {
  groupReadFrameSchema,
  groupSendFrameSchema,
  type GroupEpoch,
  type GroupEventEnvelope,
  type GroupLogEntry,
  type GroupMessage,
  type GroupReceiptCounts,
} from "./groups";
import { clientIdSchema } from "./ids";
import { LIMITS } from "./limits";

export { clientIdSchema };

export const PING_FRAME = '{"type":"ping"}';
export const PONG_FRAME = '{"type":"pong"}';

/** libsignal's `CiphertextMessageType` numbers: the SDK and libsignal apps agree on these. */
export const CIPHERTEXT_TYPES = { whisper: 2, preKey: 3, senderKey: 7, plaintext: 8 } as const;
export type CiphertextType = (typeof CIPHERTEXT_TYPES)[keyof typeof CIPHERTEXT_TYPES];

const maxBodyChars = Math.ceil(LIMITS.maxEnvelopeBytes / 3) * 4;


const userIdSchema = z.uuid();

/** One ciphertext for one destination device. */
export const outgoingMessageSchema = z.object({
  device: z.number().int().min(1).max(LIMITS.maxDevicesPerUser * 1000),
  registrationId: z.number().int().min(1).max(16380),
  type: z.union([z.literal(2), z.literal(3), z.literal(7), z.literal(8)]),
  body: z
    .string()
    .min(1)
    .max(maxBodyChars, `body exceeds ${LIMITS.maxEnvelopeBytes} bytes`)
    .refine(isBase64, "body must be standard padded base64"),
});
export type OutgoingMessage = z.infer<typeof outgoingMessageSchema>;

const devicesList = z.array(outgoingMessageSchema).max(LIMITS.maxDevicesPerUser);

/** Send one message to `to`: a ciphertext per recipient device, and per the sender's own other devices in `sync`. */
export const sendFrameSchema = z.object({
  type: z.literal("send"),
  id: clientIdSchema,
  to: userIdSchema,
  messages: devicesList,
  sync: devicesList.default([]),
});
export type SendFrame = z.input<typeof sendFrameSchema>;

/** Acknowledge every envelope up to and including `upTo`: they are stored by the client and deleted on the server. */
export const ackFrameSchema = z.object({
  type: z.literal("ack"),
  upTo: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
});
export type AckFrame = z.infer<typeof ackFrameSchema>;

/**
 * Acknowledge `receipts` frames by their `batch`: their receipts are stored by the client. Batches the server no
 * longer knows (its object restarted) are ignored: those receipts come again.
 */
export const receiptsAckFrameSchema = z.object({
  type: z.literal("receipts_ack"),
  batches: z.array(z.string().min(1).max(LIMITS.maxBatchIdChars)).min(1).max(LIMITS.maxReceiptAckBatches),
});
export type ReceiptsAckFrame = z.infer<typeof receiptsAckFrameSchema>;

/** A message as its sender names it: the sending device and its client message id. */
export const messageRefSchema = z.object({ device: z.number().int().min(1), id: clientIdSchema });
export type MessageRef = z.infer<typeof messageRefSchema>;

/** Tell `to` that these of their messages were read. Dropped when either side turned read receipts off. */
export const readFrameSchema = z.object({
  type: z.literal("read"),
  id: clientIdSchema,
  to: userIdSchema,
  refs: z.array(messageRefSchema).min(1).max(LIMITS.maxReceiptRefs),
});
export type ReadFrame = z.infer<typeof readFrameSchema>;

export const clientFrameSchema = z.discriminatedUnion("type", [
  sendFrameSchema,
  ackFrameSchema,
  receiptsAckFrameSchema,
  readFrameSchema,
  groupSendFrameSchema,
  groupReadFrameSchema,
]);
export const CLIENT_FRAME_TYPES = ["send", "ack", "receipts_ack", "read", "group_send", "group_read"] as const;
export type ClientFrame = z.input<typeof clientFrameSchema>;

/** A ciphertext delivered to this device. */
export interface MessageEnvelope {
  seq: number;
  kind: "message";
  from: string;
  fromDevice: number;
  /** The sender's client message id: dedupe on (from, fromDevice, id). */
  id: string;
  /** Server time of storage, ms since the epoch. */
  ts: number;
  type: CiphertextType;
  body: string;
}

/** Ticks: `delivered` when a device of `from` stored the messages, `read` when its user read them. */
export interface ReceiptEnvelope {
  seq: number;
  kind: "receipt";
  receipt: "delivered" | "read";
  from: string;
  fromDevice: number;
  refs: MessageRef[];
  ts: number;
}

/** A receipt pushed live (`receipts` frame): not in this device's inbox, so it has no sequence. */
export type LiveReceipt = Omit<ReceiptEnvelope, "seq">;

/** A group message or membership change copied into this device's inbox (fan-out on write). */
export type GroupInboxEnvelope = (GroupMessage | GroupEventEnvelope) & { seq: number };

export type Envelope = MessageEnvelope | ReceiptEnvelope | GroupInboxEnvelope;

export type ServerFrame =
  /** First frame on a connection. `pending`: envelopes waiting for this device. */
  | { type: "ready"; userId: string; deviceId: number; pending: number }
  /** Envelopes in increasing `seq`; acknowledge with `ack`. At most `LIMITS.deliveryWindow` unacknowledged at a time. */
  | { type: "deliver"; envelopes: Envelope[] }
  /**
   * Live only, to an online device that has everything else it was sent: delivered receipts that were not stored
   * in its inbox. Acknowledge with `receipts_ack` naming `batch`; until then the recipient's object keeps them, and
   * what stays unacknowledged comes again, stored (a repeated receipt is a no-op).
   */
  | { type: "receipts"; batch: string; receipts: LiveReceipt[] }
  /**
   * The send or read frame `id` is durably stored for every addressed device (a group send: in the group's
   * log, with its `groupSeq`). `ts`: the server timestamp.
   */
  | { type: "sent"; id: string; ts: number; dropped?: boolean; groupSeq?: number }
  | { type: "error"; id?: string; code: ErrorCode; message: string; mismatches?: DeviceMismatch[]; group?: GroupEpoch }
  /**
   * Live only: a fan-out-on-read group or channel has entries up to `upTo`; read them by cursor. `entries`: the new
   * entries themselves, consecutive and ending at `upTo`, when they are small (`LIMITS.maxNoticeEntryBytes` in all),
   * so a client whose cursor is just behind needs no read.
   */
  | { type: "group_notice"; group: string; upTo: number; entries?: GroupLogEntry[] }
  /** Live only, to a sender: the aggregated receipts of their group messages changed. */
  | { type: "group_receipts"; group: string; counts: GroupReceiptCounts[] }
  | { type: "pong" };

/** WebSocket close codes Relay uses; the close reason says why in words. */
export const CLOSE_CODES = {
  /** Missing, malformed, expired or revoked token, or the device was removed. Get a new token or re-link. */
  unauthorized: 4401,
  /** Another connection of the same device replaced this one. */
  replaced: 4409,
} as const;
