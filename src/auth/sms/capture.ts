/** SMS provider for tests: records messages in memory, never logs or sends. */
import type { SmsProvider } from "./index";

/** One message handed to the capture provider. */
export interface CapturedSms {
  to: string;
  text: string;
}

/** Every message sent through the capture provider in this isolate, oldest first (tests may clear it). */
export const capturedSms: CapturedSms[] = [];

/** A provider that appends each message to `capturedSms`. */
export function captureProvider(): SmsProvider {
  return {
    async send(to, text) {
      capturedSms.push({ to, text });
    },
  };
}
