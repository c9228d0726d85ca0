// Which operation a request is: the first spec bound to its host and path prefix, then the path
// template (find-my-way's radix tree: static segments before parameters, linear in the path),
// then the method. A bound request that matches no template is undocumented (404); one whose
// template exists for other methods is 405 with those methods. Built once per stage build.
import FindMyWay from 'find-my-way';
import type { CompiledOperation } from './compile.js';

export interface Binding {
  readonly name: string;
  /** Lower-case hosts (port stripped); undefined: every host. */
  readonly hosts?: ReadonlySet<string>;
  /** The path the spec's paths are relative to ('' for the root), without a trailing slash. */
  readonly prefix: string;
}

interface Entry {
  readonly op: CompiledOperation;
  /** The template's parameter names, in order of appearance (the router numbers them). */
  readonly names: readonly string[];
}

/** Per normalized template: its operations by method. */
type Methods = Map<string, Entry>;

export type Match<S> =
  | { readonly kind: 'operation'; readonly spec: S; readonly op: CompiledOperation; readonly pathParams: Readonly<Record<string, string>> }
  | { readonly kind: 'no_path'; readonly spec: S }
  | { readonly kind: 'wrong_method'; readonly spec: S; readonly allow: readonly string[] };

/** `/pets/{id}.{ext}` -> `/pets/:p0.:p1` and [id, ext]; a literal ':' is escaped as find-my-way wants. */
export function routerPath(template: string): { path: string; names: string[] } {
  const names: string[] = [];
  const path = template.replace(/:/g, '::').replace(/\{([^{}]+)\}/g, (_m, name: string) => `:p${names.push(name) - 1}`);
  return { path, names };
}

export class SpecRouter<S extends Binding> {
  private readonly tree = FindMyWay({ ignoreTrailingSlash: false, caseSensitive: true, maxParamLength: 4096 });

  constructor(
    readonly spec: S,
    readonly operations: readonly CompiledOperation[],
  ) {
    const byPath = new Map<string, Methods>();
    for (const op of operations) {
      const { path, names } = routerPath(op.template);
      let methods = byPath.get(path);
      if (!methods) {
        methods = new Map();
        byPath.set(path, methods);
        // One route per template: the router finds the template, the store the method.
        this.tree.on('GET', path, () => undefined, methods);
      }
      if (methods.has(op.method)) throw new Error(`${op.method} ${op.template} is defined twice (path templates differing only in parameter names)`);
      methods.set(op.method, { op, names });
    }
  }

  /** Whether the binding covers this request at all. */
  covers(host: string, path: string): boolean {
    if (this.spec.hosts && !this.spec.hosts.has(host)) return false;
    const p = this.spec.prefix;
    return p === '' || path === p || path.startsWith(`${p}/`);
  }

  /** The request's operation (call only when `covers`). */
  match(method: string, path: string): Match<S> {
    const rel = this.spec.prefix === '' ? path : path.slice(this.spec.prefix.length) || '/';
    const found = this.tree.find('GET', rel);
    if (!found) return { kind: 'no_path', spec: this.spec };
    const methods = found.store as Methods;
    // HEAD is GET without a body (RFC 9110) unless the spec describes HEAD itself.
    const entry = methods.get(method) ?? (method === 'HEAD' ? methods.get('GET') : undefined);
    if (!entry) return { kind: 'wrong_method', spec: this.spec, allow: [...methods.keys()].sort() };
    const params = found.params as Record<string, string | undefined>;
    const pathParams: Record<string, string> = {};
    entry.names.forEach((name, i) => {
      pathParams[name] = params[`p${i}`] ?? '';
    });
    return { kind: 'operation', spec: this.spec, op: entry.op, pathParams };
  }
}
