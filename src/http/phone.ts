/**
 * Phone numbers to E.164, behind a dynamic import: libphonenumber's metadata (~12,000 objects that every full
 * collection would mark) is then built by an isolate's first registration, not by every isolate, most of which only
 * run users' objects.
 */
import { parsePhoneNumberFromString } from "libphonenumber-js/max";

/** The E.164 form of `phone`, or undefined when it is not a valid number written in E.164 form. */
export function toE164(phone: string): string | undefined {
  const parsed = phone.startsWith("+") ? parsePhoneNumberFromString(phone) : undefined;
  return parsed?.isValid() ? parsed.number : undefined;
}
