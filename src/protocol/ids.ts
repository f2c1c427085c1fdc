/** Identifiers shared by frames and HTTP bodies. */
import * as z from "zod";
import { LIMITS } from "./limits";

/** A client message id: the sender's name for one send, the key of its dedupe. */
export const clientIdSchema = z
  .string()
  .min(1)
  .max(LIMITS.maxClientIdLength)
  .regex(/^[A-Za-z0-9_-]+$/, "id must be 1-64 characters of A-Z a-z 0-9 _ -");
