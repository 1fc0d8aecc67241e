import { relative } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_DATA_DIR, runLocomo } from './eval/locomo.ts';
import { checkCodeUnchanged, machineInfo, markdownReport, writeResults } from './lib/report.ts';
import { REPO_ROOT } from './lib/server-process.ts';

const USAGE = `Usage: npm run eval -- locomo [--data DIR]

Evaluations:
  locomo   retrieval quality on LoCoMo (recall@5, recall@10, hit@10, MRR, ablation)

Options:
  --data DIR   the LoCoMo conversations (default ${relative(REPO_ROOT, DEFAULT_DATA_DIR)})`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { data: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help || positionals[0] !== 'locomo') {
    process.stderr.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const machine = machineInfo();
  const startedAt = new Date();
  const result = await runLocomo(values.data ?? DEFAULT_DATA_DIR);
  checkCodeUnchanged(machine);
  const options = { durationSec: 0, runs: 1, warmupSec: 0 };
  process.stdout.write(`\n${markdownReport('locomo', result, machine, options, startedAt)}\n`);
  const written = writeResults('locomo', result, machine, options, startedAt);
  process.stdout.write(`Results: ${written.map((p) => relative(REPO_ROOT, p)).join(', ')}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `eval failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
