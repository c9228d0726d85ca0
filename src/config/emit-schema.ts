// Prints the configuration JSON Schema (`make schema` writes it to docs/config.schema.json).
import { schemaJson } from './schema.js';

process.stdout.write(schemaJson());
