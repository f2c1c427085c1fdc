/** The session layer's limits, libsignal 0.103's values (rust/protocol/src/consts.rs), in one place. */

/** Largest counter jump accepted in one receiving chain (unlimited in a session with one's own account). */
export const MAX_FORWARD_JUMPS = 25_000;
/** Skipped message keys kept per receiving chain; the oldest are dropped beyond this. */
export const MAX_MESSAGE_KEYS = 2_000;
/** Receiving chains kept per session state; the oldest is dropped beyond this. */
export const MAX_RECEIVER_CHAINS = 5;
/** Previous session states kept per address (for simultaneous initiation and late messages). */
export const ARCHIVED_STATES_MAX_LENGTH = 40;
/** An initiated session nobody answered is no longer used for sending after this long (30 days). */
export const MAX_UNACKNOWLEDGED_SESSION_AGE_MS = 30 * 24 * 60 * 60 * 1000;
