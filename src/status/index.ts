/** The local status surface: state fed by the gateway, and the HTTP server that shows it (docs/status.md). */
export { StatusState, type StatusStateOptions } from './state.js';
export { startStatusServer, type StatusServer, type StatusServerOptions } from './server.js';
export { DEFAULT_HEALTH_RULES, type HealthRules } from './health.js';
export { checkStatusConfig, isLoopback, parseListen } from './listen.js';
export type { GatewayRef, StatusGateway, StatusSnapshot, HealthReport } from './types.js';
export { StatusSurface, DEFAULT_STATUS_LISTEN, type StatusHooks } from './surface.js';
