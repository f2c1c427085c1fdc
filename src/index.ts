/** The edge Worker: one Hono app routing to the per-resource routers, plus the Durable Object classes. */
import { Hono } from "hono";
import { logger } from "./log";
import type { AppEnv } from "./http/app-types";
import { connect } from "./http/connect";
import { devices } from "./http/devices";
import { notFound, renderError } from "./http/errors";
import { groups } from "./http/groups";
import { keys } from "./http/keys";
import { registration } from "./http/registration";
import { settings } from "./http/settings";
import { tokens } from "./http/tokens";
import { limitBody } from "./http/validate";

export { GroupDO } from "../durable-objects/group";
export { UserDO } from "../durable-objects/user";

const app = new Hono<AppEnv>();

app.use(async (c, next) => {
  const started = Date.now();
  await next();
  logger(c.env.LOG_LEVEL).info("request", {
    method: c.req.method,
    route: c.req.routePath,
    status: c.res.status,
    ms: Date.now() - started,
  });
});
app.use("/v1/*", limitBody);

app.get("/v1/health", (c) => c.json({ ok: true }));
app.route("/v1/registration", registration);
app.route("/v1/tokens", tokens);
app.route("/v1/devices", devices);
app.route("/v1/keys", keys);
app.route("/v1/settings", settings);
app.route("/v1/groups", groups);
app.route("/v1/connect", connect);

app.onError(renderError);
app.notFound(notFound);

export default app;
