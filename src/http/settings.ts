/** Per-user settings; today: whether read receipts are sent and received. */
import { Hono } from "hono";
import { settingsSchema } from "../protocol/http";
import type { AppEnv } from "./app-types";
import { requireDevice } from "./authenticate";
import { jsonBody } from "./validate";

export const settings = new Hono<AppEnv>()
  .use(requireDevice)
  .get("/", async (c) => c.json(await c.env.USER.get(c.env.USER.idFromName(c.get("device").userId)).settings()))
  .put("/", jsonBody(settingsSchema), async (c) => {
    const stub = c.env.USER.get(c.env.USER.idFromName(c.get("device").userId));
    return c.json(await stub.updateSettings(c.req.valid("json")));
  });
