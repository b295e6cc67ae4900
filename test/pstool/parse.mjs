// parse.mjs parses PowerShell files with tree-sitter-powershell (wasm) and
// reports every ERROR or MISSING node as "file:line:col: ERROR|MISSING <snippet>".
// Exit status: 0 all files parse cleanly, 1 a parse problem, 2 usage or I/O error.
//
// The replica driver's TestScriptsGolden runs it on replica/testdata/scripts so
// that a script real PowerShell might reject never ships; the emulator's own
// parser is a second, independent check.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Parser, Language } from 'web-tree-sitter';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node parse.mjs FILE.ps1...');
  process.exit(2);
}

const require = createRequire(import.meta.url);
const wasm = require.resolve('tree-sitter-powershell/tree-sitter-powershell.wasm');

await Parser.init();
const parser = new Parser();
parser.setLanguage(await Language.load(wasm));

function snippet(text, node) {
  let s = text.slice(node.startIndex, Math.min(node.endIndex, node.startIndex + 60));
  if (s.trim() === '') {
    // a zero-width node: show the source line around it instead
    const from = text.lastIndexOf('\n', node.startIndex - 1) + 1;
    s = text.slice(from, Math.min(text.indexOf('\n', node.startIndex) >>> 0, from + 80));
  }
  return JSON.stringify(s);
}

// problems walks the tree and yields every ERROR node and every node the
// parser inserted because it was missing.
function* problems(node) {
  if (node.isError || node.type === 'ERROR') {
    yield ['ERROR', node];
    return; // its children are part of the same error
  }
  if (node.isMissing) {
    yield ['MISSING', node];
  }
  if (!node.hasError && !node.isMissing) {
    return;
  }
  for (let i = 0; i < node.childCount; i++) {
    yield* problems(node.child(i));
  }
}

let bad = 0;
for (const file of files) {
  let text;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    console.error(`${file}: ${e.message}`);
    process.exit(2);
  }
  const tree = parser.parse(text);
  for (const [kind, node] of problems(tree.rootNode)) {
    const p = node.startPosition;
    const what = kind === 'MISSING'
      ? `MISSING ${JSON.stringify(node.type)} near ${snippet(text, node)}`
      : `ERROR ${snippet(text, node)}`;
    console.log(`${file}:${p.row + 1}:${p.column + 1}: ${what}`);
    bad++;
  }
  tree.delete();
}
if (bad > 0) {
  console.log(`${bad} parse problem(s) in ${files.length} file(s)`);
  process.exit(1);
}
