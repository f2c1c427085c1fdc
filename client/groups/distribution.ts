/**
 * Our sender key per group, and getting it to the members: one distribution id per (group, this device), its
 * SenderKeyDistributionMessage sent to each member over the pairwise sessions as an ordinary 1:1 send (which also
 * reaches every device of the member and, as sync copies, our own other devices) and acknowledged before any group
 * message that needs it, so it is earlier in every inbox. A new distribution replaces the key whenever a member who
 * may hold it has left or was removed, so a former member cannot read anything sent later.
 */
import { createSenderKeyDistributionMessage, newDistributionId } from "../crypto/sender-keys";
import type { Core } from "../core";
import { ConnectionClosedError, RelayApiError } from "../errors";
import { untrustedOps } from "../identity/pending";
import { encodeSenderKeyContent } from "../messages/content";
import { newMessageId } from "../messages/ids";
import { IdentityBlockedError, buildPlaintextFrame } from "../sessions/fanout";
import { repairDevices } from "../sessions/repair";
import { StagedProtocolStore } from "../sessions/staged-store";
import { RelaySenderKeyStore } from "../store/sender-key-store";
import { put } from "../store/types";
import { mustRotate } from "./state";
import type { GroupRecord, OwnSenderKeyRecord } from "./types";

/** How a pairwise send ended: stored for every device, the connection closed first, or refused (reported as an error). */
export type PairwiseOutcome = "sent" | "closed" | "failed";

async function holdUntrusted(core: Core, staged: StagedProtocolStore): Promise<void> {
  const { ops, addresses } = untrustedOps(staged, core.now());
  await core.store.write(ops);
  for (const address of addresses) core.events.emit("identityChanged", address);
}

/** Runs `work` in the lane against a staged store and commits its writes; false when a changed identity stopped it. */
function staged(core: Core, work: (staged: StagedProtocolStore) => Promise<void>): Promise<boolean> {
  return core.lane.run(async () => {
    const store = new StagedProtocolStore(core.store, core.local, core.now);
    try {
      await work(store);
    } catch (error) {
      if (!(error instanceof IdentityBlockedError)) throw error;
      await holdUntrusted(core, store);
      return false;
    }
    await core.store.write(store.writes());
    return true;
  });
}

/**
 * Sends `plaintext` to every device of `to` (and, as sync copies, to our other devices) with one client id, repairing
 * device lists on `mismatched_devices`, and waits for the server's `sent`.
 * @example
 * const outcome = await sendPairwise(core, bobId, encodeSenderKeyContent({ senderKey: { group, message }, sentAt: Date.now() }));
 */
export async function sendPairwise(core: Core, to: string, plaintext: Uint8Array): Promise<PairwiseOutcome> {
  const id = newMessageId();
  for (let repairs = 0; ; repairs++) {
    let frame: Awaited<ReturnType<typeof buildPlaintextFrame>> | undefined;
    try {
      if (!(await staged(core, async (s) => void (frame = await buildPlaintextFrame(core, s, { id, to }, plaintext, plaintext))))) return "failed";
    } catch (error) {
      if (error instanceof RelayApiError && error.status === 404) return "failed"; // no such user (any more)
      throw error;
    }
    let answer;
    try {
      answer = await core.connection.request(frame!);
    } catch (error) {
      if (error instanceof ConnectionClosedError) return "closed";
      throw error;
    }
    if (answer.type === "sent") return "sent";
    if (answer.code === "mismatched_devices" && repairs < core.tuning.maxRepairs) {
      if (!(await staged(core, (s) => repairDevices(core, s, answer.mismatches ?? [])))) return "failed";
      continue;
    }
    core.events.emit("error", new Error(`pairwise send to ${to} refused: ${answer.code}: ${answer.message}`));
    return "failed";
  }
}

/**
 * Our sender key for `group`, made anew when there is none or a member it went to is no longer in the group.
 * Call in the lane.
 * @example
 * const own = await core.lane.run(() => currentSenderKey(core, group));
 */
export async function currentSenderKey(core: Core, group: GroupRecord): Promise<OwnSenderKeyRecord> {
  const members = group.members.map((m) => m.userId);
  let own = await core.store.get("groupSenderKeys", group.groupId);
  if (!own || mustRotate(own, members, core.userId)) {
    own = { distributionId: newDistributionId(), epoch: group.epoch, createdAt: core.now(), sentTo: [] };
    await createSenderKeyDistributionMessage({ userId: core.userId, deviceId: core.deviceId }, own.distributionId, new RelaySenderKeyStore(core.store));
    await core.store.write([put("groupSenderKeys", group.groupId, own)]);
  }
  return own;
}

/**
 * Sends our current distribution message to every member (user) of `group` who has not had it, and to our own
 * other devices; records each user as soon as the server stored it for them. "closed": try again on the next
 * connection. Members whose send was refused are reported as errors and skipped (their next send tries again).
 * @example
 * if ((await distributeSenderKey(core, group)) === "closed") return false;
 */
export async function distributeSenderKey(core: Core, group: GroupRecord): Promise<"done" | "closed"> {
  const me = core.userId;
  const own = await core.lane.run(() => currentSenderKey(core, group));
  const missing = group.members.map((m) => m.userId).filter((u) => u !== me && !own.sentTo.includes(u));
  if (!own.sentTo.includes(me)) missing.push(me); // our other devices: covered by the first send's sync copies
  for (const user of missing) {
    if (user === me && own.sentTo.includes(me)) continue;
    const message = await core.lane.run(() =>
      createSenderKeyDistributionMessage({ userId: me, deviceId: core.deviceId }, own.distributionId, new RelaySenderKeyStore(core.store)),
    );
    const outcome = await sendPairwise(core, user, encodeSenderKeyContent({ senderKey: { group: group.groupId, message }, sentAt: core.now() }));
    if (outcome === "closed") return "closed";
    if (outcome === "failed") continue;
    for (const u of [user, me]) if (!own.sentTo.includes(u)) own.sentTo.push(u);
    await core.lane.run(async () => {
      // Only if it is still the same distribution (a group event may have flagged it meanwhile: keep the flag).
      const stored = await core.store.get("groupSenderKeys", group.groupId);
      if (stored?.distributionId === own.distributionId) await core.store.write([put("groupSenderKeys", group.groupId, { ...stored, sentTo: own.sentTo })]);
    });
  }
  return "done";
}
