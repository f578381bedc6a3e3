/**
 * Imported first by the supervisor's entry (main.ts), before any other module, for its side effect: V8's young
 * generation stays at its initial size (two 1 MiB semi-spaces) for the process's whole life.
 *
 * Why: V8 doubles the semi-spaces (up to 16 MiB each) whenever a scavenge sees much survive, which loading ~300
 * modules and parsing the config at start does, and seldom gives the memory back. That was 5-6 MiB of the
 * supervisor's RSS (new space 7.4 MiB of a 22 MiB heap, measured after traffic) for nothing a control plane needs:
 * it handles handshakes and timers, not a packet stream. docs/performance.md ("Memory") has the numbers.
 *
 * How: the routines get the same limit as a command-line flag (`--max-semi-space-size`, routines.ts), but the
 * supervisor is started by the user's command line. V8 fixes the maximum size when it creates the heap, while the
 * growth factor is read at each growth, so setting the factor to 1 here works on the running isolate.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--semi-space-growth-factor=1');
