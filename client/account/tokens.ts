/**
 * The device's tokens: an access token (15 minutes) refreshed before it expires and after any 401, and a
 * refresh token rotated on every use. A rotated session is persisted before anyone uses it: presenting
 * a spent refresh token makes the server sign the device out.
 */
import type { Session } from "../../src/protocol/http";
import { LoggedOutError, RelayApiError } from "../errors";
import { requestJson, type Fetch } from "../http/request";

export interface TokenManagerOptions {
  url: string;
  session: Session;
  fetch: Fetch;
  timeoutMs: number;
  /** Refresh when less than this is left. */
  marginMs: number;
  /** Persists a rotated session (awaited before the new token is used). */
  save(session: Session): Promise<void>;
  /** Told once when the server refuses the refresh token. */
  onLoggedOut(error: LoggedOutError): void;
}

/**
 * Hands out a fresh access token, refreshing at most once at a time.
 * @example
 * const tokens = new TokenManager({ url, session, fetch, timeoutMs: 30_000, marginMs: 60_000, save, onLoggedOut });
 * const token = await tokens.accessToken();
 */
export class TokenManager {
  private current: Session;
  private refreshing: Promise<Session> | undefined;
  private loggedOut: LoggedOutError | undefined;

  constructor(private readonly options: TokenManagerOptions) {
    this.current = options.session;
  }

  /** The current session (tokens included). */
  get session(): Session {
    return this.current;
  }

  /**
   * A valid access token: the current one, or a refreshed one when it expires within the margin.
   * @example
   * headers.authorization = `Bearer ${await tokens.accessToken()}`;
   */
  async accessToken(): Promise<string> {
    if (this.loggedOut) throw this.loggedOut;
    if (this.current.accessTokenExpiresAt - Date.now() > this.options.marginMs) return this.current.accessToken;
    return (await this.refresh()).accessToken;
  }

  /**
   * Rotates the tokens now (single-flight: concurrent callers share one refresh). `rejected`: the
   * token the caller saw refused; skips the refresh when the session already moved past it.
   * @example
   * await tokens.refresh(staleToken); // after a 401
   */
  refresh(rejected?: string): Promise<Session> {
    if (this.loggedOut) return Promise.reject(this.loggedOut);
    if (rejected !== undefined && rejected !== this.current.accessToken) return Promise.resolve(this.current);
    this.refreshing ??= this.rotate().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async rotate(): Promise<Session> {
    let next: Session;
    try {
      next = await requestJson<Session>(this.options.url, "POST", "/v1/tokens/refresh", {
        body: { refreshToken: this.current.refreshToken },
        timeoutMs: this.options.timeoutMs,
        fetch: this.options.fetch,
      });
    } catch (error) {
      if (error instanceof RelayApiError && error.status === 401) {
        this.loggedOut = new LoggedOutError(error.message);
        this.options.onLoggedOut(this.loggedOut);
        throw this.loggedOut;
      }
      throw error;
    }
    await this.options.save(next);
    this.current = next;
    return next;
  }
}
