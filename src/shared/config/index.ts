/** Public surface of the config module. */
export { loadConfig, parseConfig, parseYaml, mergeConfig, configFiles, type LoadedConfig } from './load';
export { validateConfig, resolveRoutines, type ValidatedConfig } from './validate';
export { ConfigError, formatIssue, formatPath, type ConfigIssue } from './errors';
export { logConfigWarnings, type ConfigWarning } from './warnings';
export { diffRequiresRestart, keepRestartKeys, reloadedKeys, sectionChanged, KEY_EFFECTS, type KeyEffect } from './diff';
export { parseGoDuration, formatGoDuration } from './duration';
export type * from './types';
export { DEVICE_KEYS, REFUSED_KEYS, unsupportedKeys } from './unsupported';
export { vpnNetworkIssues } from './vpn-network';
