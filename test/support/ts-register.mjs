// `node --import ./test/support/ts-register.mjs src/cli.ts ...`: runs the TypeScript sources directly in a child
// process (tests that need a real process: signals, exit codes).
import { register } from 'node:module';

register(new URL('./ts-loader.mjs', import.meta.url));
