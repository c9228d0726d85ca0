// A problem with what the operator asked for (arguments, request file, config, bundle): one line
// on stderr and exit code 2, never a stack trace.
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
