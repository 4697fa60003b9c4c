#!/usr/bin/env node
// `npm run build`: compile the library and the CLI to dist/ (JavaScript and type declarations),
// then copy the files they read at run time (board definitions, the committed bridge sketch hex
// and its source, the simavr harness, the operator console's page) beside the compiled code, so every path stays relative.
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, URL } from 'node:url';
import process from 'node:process';

const root = fileURLToPath(new URL('../', import.meta.url));
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

function copyAssets(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== 'build') copyAssets(path);
    } else if (!name.endsWith('.ts')) {
      cpSync(path, join(dist, relative(root, path)));
    }
  }
}
copyAssets(join(root, 'boards'));
copyAssets(join(root, 'tools', 'console', 'assets'));
