// Garbage collection for the CPUs the service has. Node starts four V8 helper threads for
// concurrent marking, parallel scavenges and sweeping, whatever the CPU count. With more CPUs than
// processes they run beside the main thread and shorten its pauses; with one CPU (a cpuset
// container, a Kubernetes limit of one core, one worker per core) they run instead of it: the
// kernel's scheduler gives each of them its slice while the main thread, with calls waiting, sits
// in the run queue. Measured on one pinned core at 732 Checks/s after the heap's first
// mark-compact (the bench's GC run): the event loop stood still 15-50 ms at a time, its run-queue
// wait making up most of that (/proc/self/task/<tid>/schedstat), about once a second; Check p99
// was 34 ms and p99.9 102 ms. With --single-threaded-gc the same run had p99 8 ms, p99.9 36 ms and
// 19 % less CPU per call; a mark-compact's pause is longer (marking finishes on the main thread,
// up to 37 ms against 26 ms), but no helper thread ever preempts a call. docs/operations.md.
import { cpuBudget } from '../lib/cpu-budget.js';

export const SINGLE_THREADED_GC = '--single-threaded-gc';

// V8 takes '-' or '_' between words and "no" with or without a separator (--no-x, --no_x, --nox);
// --single-threaded and --predictable imply --single-threaded-gc.
const SINGLE_THREADED = /^--(?:single[-_]threaded(?:[-_]gc)?|predictable)$/;
/** Node and V8 options by which an operator has already decided how GC uses threads: then we add nothing. */
const GC_THREAD_OPTIONS = /^--(?:(?:no[-_]?)?(?:single[-_]threaded(?:[-_]gc)?|predictable|concurrent[-_]marking|parallel[-_]marking|parallel[-_]scavenge|concurrent[-_]sweeping)|v8[-_]pool[-_]size)(?:=|$)/;

/**
 * At one CPU the old generation's limit also grows by a fixed 10% after every mark-compact (or by
 * V8's minimum step, which is more at this service's heap size), instead of by V8's own factor.
 * The factor V8 picks after the start-up collections (a small heap, the process idle) lets the
 * heap grow for minutes under load, so the first mark-compact under load comes from V8's memory
 * reducer, 100 s after the last one, and finalizes every request header string node:http2 made in
 * that time (each an external string in the old generation): 90-97 ms at 571 Checks/s on one
 * core, 224-244 ms at 1,266/s, past a 200 ms ext_authz timeout. With a fixed 10% mark-compacts
 * run from the first seconds under load, as long as in the steady state (11-26 ms at 571/s,
 * 12-29 ms at 1,266/s); the steady state is unchanged, and the heap is no larger. Measured on one
 * core only (bench/NOTES.md, item 27).
 */
export const HEAP_GROWING = '--heap-growing-percent=10';
const HEAP_GROWING_OPTIONS = /^--heap[-_]growing[-_]percent(?:=|$)/;

export type GcMode = 'single_threaded' | 'concurrent';

/** The GC mode a process started with these node options runs in. */
export function gcMode(execArgv: readonly string[]): GcMode {
  return execArgv.some((a) => SINGLE_THREADED.test(a)) ? 'single_threaded' : 'concurrent';
}

/**
 * The node options a process should start with for GC, given the CPUs it has to itself and the
 * options it is started with already: at one CPU or less --single-threaded-gc, unless the
 * operator chose a GC threading option, and HEAP_GROWING, unless the operator chose a growing
 * factor; with more, none.
 */
export function gcFlags(cpusPerProcess: number, execArgv: readonly string[]): string[] {
  if (cpusPerProcess > 1) return [];
  const chosen = (options: RegExp): boolean => execArgv.some((a) => options.test(a));
  const out: string[] = [];
  if (!chosen(GC_THREAD_OPTIONS)) out.push(SINGLE_THREADED_GC);
  if (!chosen(HEAP_GROWING_OPTIONS)) out.push(HEAP_GROWING);
  return out;
}

/**
 * How the heap's limit grows in a process started with these options: a fixed percent, or 'v8'
 * (V8's own factor; 0 is that too). On node's command line a V8 option takes its value after '='.
 */
export function heapGrowing(execArgv: readonly string[]): string {
  const given = execArgv.findLast((a) => HEAP_GROWING_OPTIONS.test(a));
  const percent = given?.includes('=') ? given.slice(given.indexOf('=') + 1) : undefined;
  return percent !== undefined && /^\d+$/.test(percent) && Number(percent) > 0 ? `${Number(percent)}%` : 'v8';
}

/**
 * The GC options for a service process on this machine: `execArgv` and `nodeOptions` (the
 * NODE_OPTIONS it runs with, where --v8-pool-size may be) are the operator's; `processes` cluster
 * workers share its CPUs.
 */
export function serviceGcFlags(execArgv: readonly string[], nodeOptions = process.env.NODE_OPTIONS ?? '', processes = 1): string[] {
  return gcFlags(cpuBudget() / processes, [...execArgv, ...nodeOptions.split(/\s+/).filter(Boolean)]);
}
