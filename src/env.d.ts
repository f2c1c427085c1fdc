/** Optional vars and secrets that `wrangler types` cannot see (they are not in wrangler.toml). */
interface Env {
  /** JSON overriding named rate limits, for local load tests only (see src/auth/rate-limit.ts). */
  RATE_LIMIT_OVERRIDES?: string;
  TWILIO_ACCOUNT_SID?: string;
  TWILIO_AUTH_TOKEN?: string;
  TWILIO_FROM?: string;
  TWILIO_MESSAGING_SERVICE_SID?: string;
  TWILIO_API_BASE?: string;
}
