/** Sending verification SMS: the provider named by `SMS_PROVIDER`. */
import { RelayError } from "../../protocol/errors";
import { captureProvider } from "./capture";
import { consoleProvider } from "./console";
import { twilioProvider, type TwilioConfig } from "./twilio";

export { capturedSms, type CapturedSms } from "./capture";

/** Delivers one text message to an E.164 number; throws `RelayError` on failure. */
export interface SmsProvider {
  send(to: string, text: string): Promise<void>;
}

/** The environment the SMS providers read: `SMS_PROVIDER` is "console", "twilio" or "capture". */
export interface SmsEnv extends TwilioConfig {
  SMS_PROVIDER: string;
}

/** The provider `env.SMS_PROVIDER` names; throws 500 `internal` for an unknown name or missing Twilio settings. */
export function smsProvider(env: SmsEnv): SmsProvider {
  switch (env.SMS_PROVIDER) {
    case "console":
      return consoleProvider();
    case "twilio":
      return twilioProvider(env);
    case "capture":
      return captureProvider();
    default:
      throw new RelayError(
        500,
        "internal",
        `Unknown SMS_PROVIDER ${JSON.stringify(env.SMS_PROVIDER)}: use "console", "twilio" or "capture"`,
      );
  }
}
