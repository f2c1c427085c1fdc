/** SMS provider for local development: logs each message, code included, as one JSON line. */
import type { SmsProvider } from "./index";

/** Hides every digit of a phone number except the last two: "+15551234567" → "+•••••••••67". */
export function maskPhone(phone: string): string {
  let keep = 2;
  return [...phone]
    .reverse()
    .map((char) => (/\d/.test(char) ? (keep-- > 0 ? char : "•") : char))
    .reverse()
    .join("");
}

/** A provider that logs `{"event":"sms.console","to":<masked>,"text":...}` instead of sending. */
export function consoleProvider(): SmsProvider {
  return {
    async send(to, text) {
      console.log(JSON.stringify({ event: "sms.console", to: maskPhone(to), text }));
    },
  };
}
