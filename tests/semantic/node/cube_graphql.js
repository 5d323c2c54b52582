/*
 * The GraphQL schema Cube 1.7.43 serves at /cubejs-api/graphql, built by Cube's own code from our
 * model, and graphql-js (the copy Cube's api-gateway uses) validating documents against it.
 *
 * What the server does (@cubejs-backend/api-gateway dist/src/gateway.js, the `/graphql` route):
 * `makeSchema(await compilerApi.metaConfig(ctx, {skipVisibilityPatch: true}))`, and
 * CompilerApi.metaConfig with skipVisibilityPatch returns `compilers.metaTransformer.cubes`.
 * Here: the model read by Cube's FileRepository (argv[2], default `model` under the working
 * directory, as CUBEJS_SCHEMA_PATH), compiled by prepareCompiler, then the same makeSchema.
 *
 * stdin: one JSON object {"documents": {"<name>": "<GraphQL text>", ...}}
 * stdout: one JSON object {"sdl": printSchema(schema), "errors": {"<name>": ["<message>", ...]}}
 *
 * The one shim (as drive_cube_config.js): @cubejs-backend/native cannot load here, and the schema
 * compiler only asks it for a Jinja engine, unused by plain YAML.
 */
'use strict';

const native = require('@cubejs-backend/native');

native.NativeInstance.prototype.newJinjaEngine = () => ({
  loadTemplate() { throw new Error('test harness: Jinja templates are not supported'); },
});
const { prepareCompiler } = require('@cubejs-backend/schema-compiler');
const { FileRepository } = require('@cubejs-backend/shared');
// The module the gateway imports as ./graphql (not the package index, which loads the native module).
const { makeSchema } = require('@cubejs-backend/api-gateway/dist/src/graphql');
const { parse, validate, printSchema } = require('graphql');

async function main() {
  const input = JSON.parse(require('fs').readFileSync(0, 'utf8') || '{}');
  const c = prepareCompiler(new FileRepository(process.argv[2] || 'model'), { adapter: 'duckdb' });
  await c.compiler.compile();
  if (!c.metaTransformer.cubes.length) throw new Error(`no cube compiled from ${process.argv[2] || 'model'}`);
  const schema = makeSchema(c.metaTransformer.cubes);
  const errors = {};
  for (const [name, text] of Object.entries(input.documents || {})) {
    try {
      errors[name] = validate(schema, parse(text)).map((e) => e.message);
    } catch (e) {
      errors[name] = [String(e && e.message ? e.message : e)];
    }
  }
  process.stdout.write(`${JSON.stringify({ sdl: printSchema(schema), errors })}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
