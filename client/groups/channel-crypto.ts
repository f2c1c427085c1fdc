/**
 * Channel posts: sealed with the channel's 32-byte key (AES-256-GCM, WebCrypto, a random 12-byte nonce in front)
 * and signed with the posting device's identity key (XEdDSA) over {@link channelPostSignedBytes}. The key travels
 * only in invite links' fragments (`relay://join/<token>#<key>`), never to the server.
 */
import { toBase64Url } from "../../src/protocol/base64";
import type { channelPostSignedBytes as ServerSignedBytes } from "../../src/protocol/groups";
import { xeddsaSign, xeddsaVerify } from "../../src/protocol/keys";

/** Bytes of a channel key. */
export const CHANNEL_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const LINK_PREFIX = "relay://join/";
/** Invite tokens name their group: `<group id>.<43 base64url characters>` (as `INVITE_TOKEN` in src/protocol/groups.ts). */
const INVITE_TOKEN = /^([0-9a-f-]{36})\.([A-Za-z0-9_-]{43})$/;

/**
 * Bytes a channel post's signature covers, exactly as `src/protocol/groups.ts` defines them (repeated here so the
 * browser bundle does not pull the server's schemas; the type below and a test keep the two the same).
 * @example
 * const signed = channelPostSignedBytes({ group, from: me, fromDevice: 1, id }, sealed);
 */
export const channelPostSignedBytes: typeof ServerSignedBytes = (post, body) => {
  const head = new TextEncoder().encode(`relay-channel-post\u0000${post.group}\u0000${post.from}\u0000${post.fromDevice}\u0000${post.id}\u0000`);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
};

/** What names one post: the channel, the posting device, its client id. */
export interface PostRef {
  group: string;
  from: string;
  fromDevice: number;
  id: string;
}

/**
 * A fresh channel key.
 * @example
 * const key = newChannelKey(); // 32 random bytes
 */
export function newChannelKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(CHANNEL_KEY_BYTES));
}

async function aesKey(key: Uint8Array, usage: "encrypt" | "decrypt"): Promise<CryptoKey> {
  if (key.length !== CHANNEL_KEY_BYTES) throw new RangeError(`a channel key has ${CHANNEL_KEY_BYTES} bytes`);
  return crypto.subtle.importKey("raw", Uint8Array.from(key), { name: "AES-GCM" }, false, [usage]);
}

const additionalData = (group: string) => new TextEncoder().encode(`relay-channel\u0000${group}`);

/**
 * Seals a post's plaintext: nonce ‖ AES-256-GCM ciphertext and tag, bound to the channel id.
 * @example
 * const sealed = await sealPost(key, channelId, encodeContent({ body: { text: "hello" }, sentAt: Date.now(), to: channelId }));
 */
export async function sealPost(key: Uint8Array, group: string, plaintext: Uint8Array): Promise<Uint8Array> {
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: additionalData(group) }, await aesKey(key, "encrypt"), Uint8Array.from(plaintext)),
  );
  const out = new Uint8Array(NONCE_BYTES + sealed.length);
  out.set(nonce);
  out.set(sealed, NONCE_BYTES);
  return out;
}

/**
 * Opens {@link sealPost}'s bytes; throws when the key is wrong or the bytes were changed.
 * @example
 * const plaintext = await openPost(key, channelId, sealed);
 */
export async function openPost(key: Uint8Array, group: string, sealed: Uint8Array): Promise<Uint8Array> {
  if (sealed.length < NONCE_BYTES + 16) throw new Error("sealed post too short");
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: sealed.slice(0, NONCE_BYTES), additionalData: additionalData(group) },
    await aesKey(key, "decrypt"),
    sealed.slice(NONCE_BYTES),
  );
  return new Uint8Array(plain);
}

/**
 * Signs a sealed post with the device's identity private key (XEdDSA, 64 bytes).
 * @example
 * const signature = signPost(identity.privateKey, { group, from: me, fromDevice: 1, id }, sealed);
 */
export function signPost(privateKey: Uint8Array, post: PostRef, sealed: Uint8Array): Uint8Array {
  return xeddsaSign(privateKey, channelPostSignedBytes(post, sealed));
}

/**
 * Whether `signature` is the posting device's signature over the post (its 33-byte identity key).
 * @example
 * if (!verifyPost(identityKey, post, sealed, signature)) refuse();
 */
export function verifyPost(publicKey: Uint8Array, post: PostRef, sealed: Uint8Array, signature: Uint8Array): boolean {
  return xeddsaVerify(publicKey, channelPostSignedBytes(post, sealed), signature);
}

/**
 * An invite link: the token, and (channels) the channel key in the fragment, which is never sent to a server.
 * @example
 * inviteLink(token, key); // "relay://join/<groupId>.<secret>#<base64url key>"
 */
export function inviteLink(token: string, key?: Uint8Array): string {
  return `${LINK_PREFIX}${token}${key ? `#${toBase64Url(key)}` : ""}`;
}

function fromBase64Url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/**
 * Reads an invite link (or a bare token): the token, the group it names and the channel key if the link has one.
 * Throws a `TypeError` on anything else.
 * @example
 * const { token, groupId, key } = parseInviteLink("relay://join/<groupId>.<secret>#<key>");
 */
export function parseInviteLink(link: string): { token: string; groupId: string; key?: Uint8Array } {
  const rest = link.startsWith(LINK_PREFIX) ? link.slice(LINK_PREFIX.length) : link;
  const hash = rest.indexOf("#");
  const token = hash < 0 ? rest : rest.slice(0, hash);
  const match = INVITE_TOKEN.exec(token);
  if (!match) throw new TypeError("not an invite link or token");
  if (hash < 0) return { token, groupId: match[1]! };
  let key: Uint8Array;
  try {
    key = fromBase64Url(rest.slice(hash + 1));
  } catch {
    throw new TypeError("the invite link's key is not base64url");
  }
  if (key.length !== CHANNEL_KEY_BYTES) throw new TypeError(`the invite link's key must be ${CHANNEL_KEY_BYTES} bytes`);
  return { token, groupId: match[1]!, key };
}
