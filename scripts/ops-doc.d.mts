// Types of scripts/ops-doc.mjs for the tests that import it (test/docs/ops.test.ts).
import type { OpCatalogueEntry } from '../src/engine.types.js';
import type { OpDef } from '../src/ops/types.js';

export const BEGIN: string;
export const END: string;
export function acceptedDatatypes(op: OpDef): { names: string[]; datatypes: string[] }[];
export function schemaType(schema: unknown): string;
export function renderOpTables(allOps: readonly OpDef[], catalogue: readonly OpCatalogueEntry[]): string;
export function withGeneratedTables(md: string, tables: string): string;
export function generatedBlock(md: string): string | undefined;
