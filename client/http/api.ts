/** The Relay HTTP API as typed calls: one method per route (README "HTTP API"). */
import type { DeviceInfo, DeviceKeys, LinkCodeResponse, PreKeyBundleResponse, PreKeyCounts, Session, Settings, UploadKeysBody } from "../../src/protocol/http";
import type { TokenManager } from "../account/tokens";
import { RelayApiError } from "../errors";
import { requestJson, type Fetch } from "./request";

export interface ApiOptions {
  url: string;
  fetch: Fetch;
  timeoutMs: number;
}

/**
 * Routes that need no token: registration, linking.
 * @example
 * await registrationCode(options, "+14155550101");
 */
export function registrationCode(options: ApiOptions, phone: string): Promise<{ expiresAt: number }> {
  return requestJson(options.url, "POST", "/v1/registration/code", { ...options, body: { phone } });
}

/**
 * Verifies the SMS code and registers the primary device with `device`'s public keys.
 * @example
 * const session = await verifyRegistration(options, { phone, code, device: body });
 */
export function verifyRegistration(options: ApiOptions, body: { phone: string; code: string; name?: string; device: DeviceKeys }): Promise<Session> {
  return requestJson(options.url, "POST", "/v1/registration/verify", { ...options, body });
}

/**
 * Redeems a link code for a new device with `device`'s public keys.
 * @example
 * const session = await redeemLinkCode(options, { code, device: body, name: "laptop" });
 */
export function redeemLinkCode(options: ApiOptions, body: { code: string; name?: string; device: DeviceKeys }): Promise<Session> {
  return requestJson(options.url, "POST", "/v1/devices/link", { ...options, body });
}

/**
 * Authenticated routes. Every call gets a fresh access token; a 401 refreshes the tokens and retries once.
 * @example
 * const api = new RelayApi(options, tokens);
 * const { devices } = await api.devices();
 */
export class RelayApi {
  constructor(
    private readonly options: ApiOptions,
    private readonly tokens: TokenManager,
  ) {}

  /**
   * Any authenticated route: `method path` with an optional JSON body; the parsed answer (undefined for 204).
   * @example
   * const state = await api.call<GroupState>("GET", `/v1/groups/${groupId}`);
   */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const token = await this.tokens.accessToken();
    try {
      return await requestJson<T>(this.options.url, method, path, { ...this.options, token, body });
    } catch (error) {
      if (!(error instanceof RelayApiError) || error.status !== 401) throw error;
      const renewed = await this.tokens.refresh(token);
      return requestJson<T>(this.options.url, method, path, { ...this.options, token: renewed.accessToken, body });
    }
  }

  /**
   * `POST /v1/devices/link-codes`: a single-use code a new device redeems within 10 minutes.
   * @example
   * const { code } = await api.linkCode();
   */
  linkCode(): Promise<LinkCodeResponse> {
    return this.call("POST", "/v1/devices/link-codes");
  }

  /**
   * `GET /v1/devices`.
   * @example
   * const { devices } = await api.devices();
   */
  devices(): Promise<{ devices: DeviceInfo[] }> {
    return this.call("GET", "/v1/devices");
  }

  /**
   * `DELETE /v1/devices/:id`.
   * @example
   * await api.removeDevice(2);
   */
  async removeDevice(deviceId: number): Promise<void> {
    await this.call("DELETE", `/v1/devices/${deviceId}`);
  }

  /**
   * `POST /v1/tokens/revoke`: signs this device out on the server (its tokens stop working).
   * @example
   * await api.signOut();
   */
  async signOut(): Promise<void> {
    await this.call("POST", "/v1/tokens/revoke");
  }

  /**
   * `GET /v1/keys/:userId[?device=N]`: bundles, claiming one-time prekeys.
   * @example
   * const { devices } = await api.bundles(bobId, 2);
   */
  bundles(userId: string, deviceId?: number): Promise<PreKeyBundleResponse> {
    return this.call("GET", `/v1/keys/${encodeURIComponent(userId)}${deviceId === undefined ? "" : `?device=${deviceId}`}`);
  }

  /**
   * `PUT /v1/keys`.
   * @example
   * await api.uploadKeys({ preKeys });
   */
  async uploadKeys(body: UploadKeysBody): Promise<void> {
    await this.call("PUT", "/v1/keys", body);
  }

  /**
   * `GET /v1/keys`: one-time prekeys this device has left on the server.
   * @example
   * const { preKeys, kyberPreKeys } = await api.keyCounts();
   */
  keyCounts(): Promise<PreKeyCounts> {
    return this.call("GET", "/v1/keys");
  }

  /**
   * `GET /v1/settings`.
   * @example
   * const { readReceipts } = await api.settings();
   */
  settings(): Promise<Settings> {
    return this.call("GET", "/v1/settings");
  }

  /**
   * `PUT /v1/settings`.
   * @example
   * await api.updateSettings({ readReceipts: false });
   */
  updateSettings(changes: Partial<Settings>): Promise<Settings> {
    return this.call("PUT", "/v1/settings", changes);
  }
}
