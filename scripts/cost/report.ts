// How `npm run cost` shows the model: text tables for a terminal, the README's markdown tables, or one JSON value.
import type { CostModel, FlowCost } from './model.ts';
import { SERVICES, VOLUMES } from './model.ts';
import { MODES, OUTCOMES, type Mode } from './measure.ts';
import type { TemplateFacts } from './template.ts';
import { formatCount, formatUsd } from './pricing.ts';

/** The README markers between which `--markdown` output goes. */
export const README_START = '<!-- cost:start -->';
export const README_END = '<!-- cost:end -->';

function textTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(headers), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function markdownTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map((_, i) => (i === 0 ? '---' : '--:'))), ...rows.map(line)].join('\n');
}

const volumeLabel = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : String(n));
const find = (model: CostModel, mode: Mode, outcome: string): FlowCost | undefined =>
  model.flows.find((f) => f.mode === mode && f.outcome === outcome);
const bytes = (n: number) => `${formatCount(Math.round(n))} B`;

/** The rows of the counts table for one flow (label → value). */
function countRows(f: FlowCost): [string, string][] {
  const c = f.counts;
  const kv = (r: Record<string, number>) =>
    Object.entries(r)
      .map(([k, v]) => `${formatCount(v)} ${k}`)
      .join(', ') || '0';
  return [
    ['API requests (of which pending polls)', `${formatCount(c.apiRequests)} (${formatCount(c.pendingPolls)})`],
    ['Lambda invocations', formatCount(c.lambdaInvocations)],
    ['Lambda GB-s', formatCount(c.lambdaGbSeconds, 4)],
    ['state transitions', formatCount(c.transitions)],
    ['DynamoDB read units', formatCount(c.dynamoReadUnits)],
    ['DynamoDB write units (+ index)', `${formatCount(c.dynamoWriteUnits)} (+${formatCount(c.dynamoIndexWriteUnits)})`],
    ['SNS publishes', formatCount(c.snsPublishes)],
    ['SNS deliveries', kv(c.snsDeliveries)],
    ['SQS requests', formatCount(c.sqsRequests)],
    ['KMS Sign requests', kv(c.kmsSigns)],
    ['log bytes: function lines + EMF', bytes(c.logs.functionLines + c.logs.emfLines)],
    ['log bytes: Lambda platform lines', bytes(c.logs.platformLines)],
    ['log bytes: API access log', bytes(c.logs.accessLogLines)],
    ['log bytes: state machine log', bytes(c.logs.stateMachineRecords)],
    ['log events (+26 B each); total bytes', `${formatCount(c.logs.events)}; ${bytes(c.logs.total)}`],
    ['X-Ray traces', formatCount(c.traces)],
  ];
}

export function renderText(
  model: CostModel,
  facts: TemplateFacts,
  meta: { wallSeconds: number; runs: number },
): string {
  const out: string[] = [];
  out.push(
    `CIBA server: what AWS charges per flow. Prices as of ${model.prices.as_of} (${model.prices.region}, ${model.prices.currency}; free tiers ignored)`,
    `measured on the local stack (${meta.runs} run(s) per flow, ${meta.wallSeconds.toFixed(1)} s); template ${facts.stackName}: ${facts.api.type} API, ${Object.keys(facts.functions).length} functions, ${facts.stateMachines.length} state machine(s)`,
    '',
  );
  for (const mode of MODES) {
    const flows = OUTCOMES.map((o) => find(model, mode, o)).filter((f): f is FlowCost => f !== undefined);
    if (flows.length === 0) continue;
    const headers = [`${mode}: $ per million flows`, ...flows.map((f) => f.outcome)];
    const rows = SERVICES.map((service) => [
      service,
      ...flows.map((f) => formatUsd(f.rows.find((r) => r.service === service)!.usdPerMillionFlows)),
    ]);
    rows.push(['Total', ...flows.map((f) => formatUsd(f.totalPerMillionFlows))]);
    out.push(textTable(headers, rows), '');
    const counts = flows.map(countRows);
    out.push(
      textTable(
        [`${mode}: per flow`, ...flows.map((f) => f.outcome)],
        counts[0]!.map(([label], i) => [label, ...counts.map((c) => c[i]![1])]),
      ),
      '',
    );
    const fns = [...new Set(flows.flatMap((f) => f.functions.map((x) => x.fn)))];
    out.push(
      textTable(
        [`${mode}: Lambda per flow`, 'MB', ...flows.map((f) => `${f.outcome}: n × median ms`)],
        fns.map((fn) => {
          const any = flows.flatMap((f) => f.functions).find((x) => x.fn === fn)!;
          return [
            `${fn} (${any.kind})`,
            `${any.memoryMb} ${any.architecture}`,
            ...flows.map((f) => {
              const x = f.functions.find((y) => y.fn === fn);
              return x ? `${formatCount(x.invocations)} × ${x.medianMs.toFixed(1)}` : '–';
            }),
          ];
        }),
      ),
      '',
    );
  }
  out.push(
    textTable(
      ['fixed per month', 'quantity', '$ per month'],
      [
        ...model.fixed.map((f) => [f.what, formatCount(f.quantity), formatUsd(f.usdPerMonth)]),
        ['Total', '', formatUsd(model.fixedPerMonth)],
      ],
    ),
    '',
  );
  if (model.monthly.length > 0) {
    out.push(
      textTable(
        ['monthly bill, approved flows', ...model.monthly.map((m) => `${m.mode} (variable + fixed)`)],
        VOLUMES.map((n, i) => [
          `${volumeLabel(n)} flows/month`,
          ...model.monthly.map(
            (m) =>
              `$${formatUsd(m.volumes[i]!.total)} (${formatUsd(m.volumes[i]!.variable)} + ${formatUsd(m.volumes[i]!.fixed)})`,
          ),
        ]),
      ),
      'Each column assumes every flow of the month is an approved flow of that mode; for a mix (modes, denials,',
      'expiries), weight the per-flow totals above and add the fixed costs once.',
      '',
    );
  }
  out.push('Assumptions:', ...model.assumptions.map((a) => `- ${a}`));
  return out.join('\n');
}

/** The README table: $ per million approved flows by service and mode, the other outcomes' totals, the monthly bill. */
export function renderMarkdown(model: CostModel): string {
  const modes = MODES.filter((m) => find(model, m, 'approved'));
  const approved = modes.map((m) => find(model, m, 'approved')!);
  const rows = SERVICES.map((service) => [
    service,
    ...approved.map((f) => formatUsd(f.rows.find((r) => r.service === service)!.usdPerMillionFlows)),
  ]);
  rows.push(['**Total, approved**', ...approved.map((f) => `**${formatUsd(f.totalPerMillionFlows)}**`)]);
  for (const outcome of OUTCOMES.filter((o) => o !== 'approved')) {
    const flows = modes.map((m) => find(model, m, outcome));
    if (flows.every((f) => f === undefined)) continue;
    rows.push([`Total, ${outcome}`, ...flows.map((f) => (f ? formatUsd(f.totalPerMillionFlows) : 'n/a'))]);
  }
  const perFlow = markdownTable(['$ per million flows', ...modes], rows);
  const monthly = markdownTable(
    ['monthly bill (approved flows)', ...modes],
    VOLUMES.map((n, i) => [
      `${volumeLabel(n)} flows`,
      ...model.monthly.filter((m) => modes.includes(m.mode)).map((m) => `$${formatUsd(m.volumes[i]!.total)}`),
    ]),
  );
  return [
    perFlow,
    '',
    monthly,
    '',
    `AWS list prices of ${model.prices.as_of} (${model.prices.region}), free tiers ignored; the monthly bill includes $${formatUsd(model.fixedPerMonth)} of fixed costs (KMS keys, alarms, dashboard, custom metrics). ` +
      (model.xraySampled === 1
        ? 'X-Ray is priced as if every trace were recorded (an upper bound; sampling records fewer).'
        : `X-Ray is priced at ${model.xraySampled * 100} % of traces recorded.`),
  ].join('\n');
}

/** The part of the README between the cost markers, or undefined without them. */
export function readmeSection(readme: string): string | undefined {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) return undefined;
  return readme.slice(start + README_START.length, end).trim();
}

/**
 * A markdown text's table shapes, numbers aside: each table's header row in full, its separator, and the first cell
 * and cell count of every other row.
 */
export function tableShape(markdown: string): string[] {
  const shape: string[] = [];
  let inTable = false;
  for (const line of markdown.split('\n')) {
    if (!line.startsWith('|')) {
      inTable = false;
      continue;
    }
    const cells = line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    const separator = cells.every((c) => /^-+:?$/.test(c));
    shape.push(!inTable || separator ? cells.join(' | ') : `${cells[0]} (${cells.length})`);
    inTable = true;
  }
  return shape;
}
