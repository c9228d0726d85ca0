// Renders the Helm chart with the pinned helm binary (make installs it), as `helm template` does for
// an operator; shared by the chart tests.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../../helpers/service.js';

export const CHART = join(ROOT, 'deploy', 'helm', 'envoy-authz');

/** Every values file the chart is rendered with in `make test`: its ci/ files and the plain manifests' sources. */
export const VALUES_FILES = [
  ...readdirSync(join(CHART, 'ci'))
    .filter((f) => f.endsWith('-values.yaml'))
    .map((f) => join('deploy', 'helm', 'envoy-authz', 'ci', f)),
  join('deploy', 'kubernetes', 'values.yaml'),
  join('envoy', 'istio', 'values.yaml'),
];

export interface K8sDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

export function helmBinary(): string {
  const candidates = [process.env.HELM_BIN, join(ROOT, '.tools', 'bin', 'helm')].filter((c): c is string => !!c);
  for (const c of candidates) if (existsSync(c)) return c;
  throw new Error('helm not found: run `make deploy-tools` (go install into .tools/bin)');
}

/** A pinned tool file: from the Makefile's environment variable, else the one copy under .tools/. */
function toolPath(env: string, dir: string, prefix: string): string {
  const fromEnv = process.env[env];
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  const base = join(ROOT, '.tools', dir);
  const found = existsSync(base) ? readdirSync(base).filter((f) => f.startsWith(prefix) && !f.endsWith('.tmp')) : [];
  if (found.length !== 1) throw new Error(`${prefix}* not found in .tools/${dir}: run \`make deploy-tools\``);
  return join(base, found[0]!);
}

/** istio.io/api at the pinned version: its CRDs (kubernetes/) and protos. */
export const istioApiDir = (): string => toolPath('ISTIO_API_DIR', '.', 'istio-api-');
/** prometheus-operator's ServiceMonitor CRD at the pinned version. */
export const monitoringCrdsFile = (): string => toolPath('MONITORING_CRDS_FILE', 'crds', 'prometheus-operator-');

export class RenderError extends Error {}

/** `helm template` of the chart (or a copy) with these values files (relative to the repository) and `--set` pairs. */
export function render(valuesFiles: readonly string[], set: readonly string[] = [], chart = CHART, extra: readonly string[] = []): K8sDoc[] {
  const args = ['template', 'envoy-authz', chart, '--namespace', 'envoy-authz', '--kube-version', '1.27.0', ...extra];
  for (const f of valuesFiles) args.push('-f', join(ROOT, f));
  for (const s of set) args.push('--set', s);
  const key = JSON.stringify(args);
  let out = rendered.get(key);
  if (out === undefined) {
    try {
      out = execFileSync(helmBinary(), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      throw new RenderError(String((err as { stderr?: string }).stderr ?? err));
    }
    rendered.set(key, out);
  }
  return parseAllDocuments(out)
    .map((d) => d.toJS() as K8sDoc | null)
    .filter((d): d is K8sDoc => d !== null);
}

/** helm's output by arguments, for the test file's lifetime (several tests render the same values). */
const rendered = new Map<string, string>();

export function only<T extends K8sDoc = K8sDoc>(docs: readonly K8sDoc[], kind: string): T {
  const found = docs.filter((d) => d.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0] as T;
}

/** NOTES.txt as `helm install` would print it (helm template does not render it offline): a copy of the chart renders it into a ConfigMap. */
export function renderNotes(dir: string, valuesFiles: readonly string[]): string {
  const chart = join(dir, 'chart');
  cpSync(CHART, chart, { recursive: true });
  cpSync(join(chart, 'templates', 'NOTES.txt'), join(chart, 'notes.txt'));
  writeFileSync(join(chart, 'templates', 'zz-notes.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: {{ tpl (.Files.Get "notes.txt") . | quote }}\n');
  return only(render(valuesFiles, [], chart, ['--show-only', 'templates/zz-notes.yaml']), 'ConfigMap').data!.notes!;
}
