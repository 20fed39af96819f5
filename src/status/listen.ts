/** The status server's `listen` address and its token rule, defined with the configuration that checks them. */
export { checkStatusConfig, isLoopback, parseListen, type ListenAddress, type StatusConfigLike } from '../config/listen.js';
