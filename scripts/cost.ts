// `npm run cost`: what AWS charges for one CIBA flow, per delivery mode (poll, ping, push) and outcome (approved,
// denied, expired), in US dollars per million flows by service, and the monthly bill at 1M, 10M and 100M flows.
// Nothing is assumed that can be measured (docs/cost.md):
//   - the deployable stack is synthesized in this process (scripts/cost/template.ts): API type, memory sizes,
//     architectures, log retention, tracing, KMS key specs, alarms;
//   - real flows run on the local stack in this process (scripts/cost/measure.ts): API requests, Lambda invocations
//     and their durations, DynamoDB request units, state transitions, SNS, SQS, signatures, log lines;
//   - prices come from one dated file, scripts/cost/prices.json.
//
//   npm run cost [-- --json | --markdown] [--runs 3] [--expiry 1] [--flows poll:approved,ping:denied,…]
//                [--xray-sampled 0.05] [--signing kms|sealed] [--update-readme]
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { METRICS } from '../functions/names.ts';
import { loadPrices } from './cost/pricing.ts';
import { synthDefaultStack } from './cost/template.ts';
import { MODES, OUTCOMES, measureFlows, type FlowSpec, type Mode, type Outcome } from './cost/measure.ts';
import { costModel } from './cost/model.ts';
import { README_END, README_START, readmeSection, renderMarkdown, renderText } from './cost/report.ts';

const HELP = `usage: npm run cost [-- options]
  --json            print one JSON value (the model, the template facts and every measured count)
  --markdown        print the README's tables (docs/cost.md)
  --update-readme   write the --markdown tables into README.md between ${README_START} and ${README_END}
  --runs <n>        recorded runs of each flow; durations are their median (default 3)
  --expiry <s>      requested_expiry of the expired flows, seconds (default 1)
  --flows <list>    only these mode:outcome flows, e.g. poll:approved,push:expired (default all nine)
  --xray-sampled <share>
                    share of X-Ray traces recorded, 0..1 (default 0.05: the default sampling rule's rate beyond
                    its reservoir of one request a second; 1: every trace, what a quiet deployment pays)
  --signing <kms|sealed>
                    synthesize the stack with this signingKeys construct prop (default: the stack's, kms);
                    sealed prices token signatures at 0 (signed in memory; one KMS Decrypt per cold start)
  -h, --help`;

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    markdown: { type: 'boolean', default: false },
    'update-readme': { type: 'boolean', default: false },
    runs: { type: 'string', default: '3' },
    expiry: { type: 'string', default: '1' },
    flows: { type: 'string' },
    'xray-sampled': { type: 'string', default: '0.05' },
    signing: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log(HELP);
  process.exit(0);
}

function parseFlows(text: string | undefined): FlowSpec[] {
  if (text === undefined) return MODES.flatMap((mode) => OUTCOMES.map((outcome) => ({ mode, outcome })));
  return text.split(',').map((item) => {
    const [mode, outcome] = item.trim().split(':');
    if (!MODES.includes(mode as Mode) || !OUTCOMES.includes(outcome as Outcome))
      throw new Error(`--flows: expected mode:outcome (${MODES.join('|')}:${OUTCOMES.join('|')}), got ${item}`);
    return { mode: mode as Mode, outcome: outcome as Outcome };
  });
}

const progress = (line: string) => process.stderr.write(`${line}\n`);
const signing = args.signing;
if (signing !== undefined && signing !== 'kms' && signing !== 'sealed')
  throw new Error(`--signing: expected kms or sealed, got ${signing}`);
if (signing !== undefined && args['update-readme'])
  throw new Error('--update-readme prices the default stack: leave out --signing');
const prices = loadPrices();
progress(`synthesizing the ${signing ? `signingKeys: '${signing}'` : 'default'} stack (no bundling)…`);
const { facts } = await synthDefaultStack('CibaStack', signing ? { signingKeys: signing } : {});
const measurement = await measureFlows({
  facts,
  flows: parseFlows(args.flows),
  runs: Number(args.runs),
  expirySeconds: Number(args.expiry),
  log: progress,
});
const customMetrics = Object.keys(METRICS).filter((k) => k !== 'namespace').length;
const model = costModel(measurement, facts, prices, { customMetrics, xraySampled: Number(args['xray-sampled']) });

if (args['update-readme']) {
  const file = new URL('../README.md', import.meta.url);
  const readme = readFileSync(file, 'utf8');
  if (readmeSection(readme) === undefined) throw new Error(`README.md has no ${README_START} … ${README_END} markers`);
  const start = readme.indexOf(README_START) + README_START.length;
  writeFileSync(
    file,
    `${readme.slice(0, start)}\n${renderMarkdown(model)}\n${readme.slice(readme.indexOf(README_END))}`,
  );
  progress('README.md updated');
}
if (args.json) console.log(JSON.stringify({ model, facts, measurement }, null, 2));
else if (args.markdown) console.log(renderMarkdown(model));
else console.log(renderText(model, facts, { wallSeconds: measurement.wallSeconds, runs: measurement.runs }));
