// @kith/plugin-sdk: write Kith plugins in JavaScript, for kith:plugin@0.2.0.
// Declarations of the SDK's modules, written by hand; the WIT's types are generated from
// wit/v0.2/types.wit into wit.d.ts (`cargo xtask wit-types`) and re-exported by types.d.ts.

export type * from './types.js';
export { ERROR_KINDS, KithError, accessDenied, failed, fromWit, invalid, notFound, quotaExceeded, toWit } from './errors.js';
export * from './decisions.js';
export * from './host.js';
export { context, customer, defineChannelConnector, defineLoyaltyScheme, defineScoringModel, defineTagRule, inboundRequest, message, subject } from './kinds.js';
export { fromHost, integer } from './convert.js';
export { fixed, utf8Decode, utf8Encode } from './text.js';

/** The WIT package the SDK builds against; say it in plugin.toml as `api-version = "0.2.0"`. */
export declare const API_VERSION: '0.2.0';
