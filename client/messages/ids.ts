/** Client message ids: 22 characters of base64url (128 random bits), within the protocol's 1..64 [A-Za-z0-9_-]. */
import { toBase64Url } from "../../src/protocol/base64";

/**
 * A fresh client message id.
 * @example
 * newMessageId(); // "p8Vn0l3Zq1cX1e2mG9r4Aw"
 */
export function newMessageId(): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(16)));
}
