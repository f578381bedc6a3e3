/**
 * Error kinds of the nebula-cert CLI. A HelpError is followed by the mode's usage text (Go's newHelpErrorf);
 * a HelpRequested means -h/-help was given (usage, exit 0). Anything else prints "Error: <message>".
 */
export class CliError extends Error {}
export class HelpError extends CliError {}
export class HelpRequested extends Error {}
