/**
 * Broadcast channels end to end with the SDK against the real server: the channel key travels only in the invite
 * link's fragment; posts are sealed (AES-256-GCM) and signed (XEdDSA) by the posting device; subscribers read the log
 * by cursor, verify each signature against the poster's identity key and refuse a post whose signature does not
 * verify (here: a post changed on its way from the server). The server stores the post once, as ciphertext.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GroupMessageError, parseInviteLink } from "../../../client/node";
import { channelPostSignedBytes } from "../../../client/groups/channel-crypto";
import { toBase64, toBase64Url } from "../../../src/protocol/base64";
import { channelPostSignedBytes as serverSignedBytes, type GroupLogPage } from "../../../src/protocol/groups";
import { api } from "../support/relay-client";
import { startRelay, type RelayServer } from "../support/server";
import { eventually } from "../support/eventually";
import { accessToken, filesUnder, groupSends, registerSdk, type SdkDevice } from "../support/sdk-devices";

/** A fetch that flips one character of every channel post's body in log pages: what a malicious server could do. */
const tamperingFetch: typeof fetch = async (input, init) => {
  const response = await fetch(input, init);
  if (!/\/v1\/groups\/[^/]+\/messages\?/.test(String(input)) || !response.ok) return response;
  const page = (await response.json()) as GroupLogPage;
  for (const e of page.entries) if (e.kind === "group_message") e.body = (e.body[0] === "A" ? "B" : "A") + e.body.slice(1);
  return new Response(JSON.stringify(page), { status: 200, headers: { "content-type": "application/json" } });
};

describe("channels with the SDK: sealed, signed posts read by cursor", () => {
  let server: RelayServer;
  let persistTo: string;
  let alice: SdkDevice, bob: SdkDevice, carol: SdkDevice;
  let channelId: string;
  let link: string;
  const secret = `post-${crypto.randomUUID()}`;

  beforeAll(async () => {
    persistTo = await mkdtemp(join(tmpdir(), "relay-channels-"));
    server = await startRelay({ persistTo });
    alice = await registerSdk(server, "+14155550131");
    bob = await registerSdk(server, "+14155550132");
    carol = await registerSdk(server, "+14155550133", { fetch: tamperingFetch });
    await Promise.all([alice, bob, carol].map((d) => d.relay.opened()));
  });

  afterAll(async () => {
    await Promise.all([alice, bob, carol].map((d) => d?.relay.close()));
    await server?.stop();
    await rm(persistTo, { recursive: true, force: true });
  });

  it("signs exactly the bytes the server checks", () => {
    const post = { group: crypto.randomUUID(), from: crypto.randomUUID(), fromDevice: 3, id: "p-1" };
    const body = crypto.getRandomValues(new Uint8Array(77));
    expect(channelPostSignedBytes(post, body)).toEqual(serverSignedBytes(post, body));
  });

  it("a subscriber joins with the link, reads the post by cursor and verifies its signature", async () => {
    const channel = await alice.relay.createChannel();
    channelId = channel.groupId;
    expect(channel).toMatchObject({ kind: "channel", fanout: "read" });
    link = await alice.relay.channelInvite(channelId);
    const parsed = parseInviteLink(link);
    expect(link).toMatch(/^relay:\/\/join\/[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}#[A-Za-z0-9_-]{43}$/);
    expect(parsed.groupId).toBe(channelId);

    expect(await bob.relay.subscribe(link)).toMatchObject({ joined: true });
    const id = await alice.relay.post(channelId, `${secret} first`);
    await eventually(() => alice.groupStatuses.find((s) => s.id === id && s.status === "sent"));
    // Live: the notice makes bob's SDK read the log by itself.
    const live = await eventually(() => bob.groupMessages.find((m) => m.id === id));
    expect(live).toMatchObject({ group: channelId, from: alice.relay.userId, fromDevice: 1, text: `${secret} first`, verified: true });
    const posts = await bob.relay.readChannel(channelId);
    expect(posts.map((p) => ("text" in p.body ? p.body.text : undefined))).toEqual([`${secret} first`]);
    expect(await bob.store.get("groupCursors", channelId)).toBe(live.groupSeq);

    // The server holds the sealed post once, never the text or the channel key.
    const page = await api<GroupLogPage>(server.url, "GET", `/v1/groups/${channelId}/messages?after=0`, { token: await accessToken(bob) });
    expect(page.json.entries.filter((e) => e.kind === "group_message")).toHaveLength(1);
    expect(JSON.stringify(page.json)).not.toContain(secret);
    const files = await filesUnder(persistTo);
    const anywhere = (needle: string) => files.some((c) => c.includes(Buffer.from(needle)));
    expect(anywhere(secret)).toBe(false);
    expect(anywhere(toBase64Url(parsed.key!))).toBe(false);
    expect(anywhere(toBase64(parsed.key!))).toBe(false);
    expect(anywhere(groupSends(alice).get(id)!.body)).toBe(true); // control: the sealed post is there
    expect(bob.errors).toEqual([]);
  });

  it("a post whose signature does not verify is refused, with an error event; others read it", async () => {
    expect(await carol.relay.subscribe(link)).toMatchObject({ joined: true });
    const id = await alice.relay.post(channelId, `${secret} second`);
    await eventually(() => bob.groupMessages.find((m) => m.id === id));
    const posts = await carol.relay.readChannel(channelId);
    expect(posts).toEqual([]);
    const refused = await eventually(() => carol.errors.find((e): e is GroupMessageError => e instanceof GroupMessageError && e.id === id));
    expect(refused.reason).toBe("bad-signature");
    expect(carol.groupMessages).toEqual([]);
    expect((await carol.relay.groupHistory(channelId)).filter((e) => e.kind === "skipped").length).toBeGreaterThanOrEqual(2);
  });

  it("only admins post; a subscriber's post is refused", async () => {
    const id = await bob.relay.post(channelId, "not an admin");
    const status = await eventually(() => bob.groupStatuses.find((s) => s.id === id));
    expect(status.status).toBe("failed");
  });
});
