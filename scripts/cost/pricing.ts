// The pure arithmetic of `npm run cost`: the price file (scripts/cost/prices.json) and its validation, tiered
// monthly costs, the unit conversions AWS bills by (Lambda's 1 ms rounding and GB-seconds, DynamoDB request units,
// 64 KB SNS/SQS chunks, log gigabytes) and the rounding of dollar figures for display. No I/O beyond reading the
// price file; test/unit/cost.test.ts checks it on a tiny fixture.
import { readFileSync } from 'node:fs';

export type Tier = { up_to: number | null; price: number };
export type PriceItem = {
  unit: string;
  /** `price` is USD per `per` units. */
  per: number;
  price: number;
  /** Monthly volume tiers (up_to in units, cumulative; the last one null); tiers[0].price equals price. */
  tiers?: Tier[];
  source: string;
};
export type PriceFile = {
  as_of: string;
  region: string;
  currency: string;
  note?: string;
  items: Record<string, PriceItem>;
};

export const PRICES_PATH = new URL('./prices.json', import.meta.url);

/** The items every cost model needs (scripts/cost/model.ts names them); a price file without one is refused. */
export const REQUIRED_ITEMS = [
  'apigateway_http_requests',
  'apigateway_rest_requests',
  'lambda_requests',
  'lambda_duration_arm64',
  'lambda_duration_x86_64',
  'stepfunctions_standard_transitions',
  'dynamodb_ondemand_write_units',
  'dynamodb_ondemand_read_units',
  'sns_publish',
  'sns_delivery_http',
  'sns_delivery_mobile_push',
  'sns_delivery_lambda',
  'sqs_standard_requests',
  'kms_requests_symmetric',
  'kms_requests_rsa_2048',
  'kms_requests_asymmetric',
  'kms_key_months',
  'cloudwatch_logs_ingestion',
  'cloudwatch_logs_storage',
  'cloudwatch_custom_metrics',
  'cloudwatch_alarm_metrics',
  'cloudwatch_dashboards',
  'xray_traces_recorded',
] as const;
export type ItemName = (typeof REQUIRED_ITEMS)[number];

/** Checks the shape of a parsed price file; throws with every problem found. */
export function validatePrices(raw: unknown, required: readonly string[] = REQUIRED_ITEMS): PriceFile {
  const problems: string[] = [];
  const file = raw as PriceFile;
  if (!file || typeof file !== 'object') throw new Error('price file: not a JSON object');
  if (typeof file.as_of !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(file.as_of))
    problems.push('as_of must be a YYYY-MM-DD date');
  if (typeof file.region !== 'string' || file.region === '') problems.push('region is missing');
  if (file.currency !== 'USD') problems.push('currency must be USD');
  const items = file.items ?? {};
  for (const name of required) if (!(name in items)) problems.push(`item ${name} is missing`);
  for (const [name, item] of Object.entries(items)) {
    const where = `item ${name}`;
    if (typeof item.unit !== 'string' || item.unit === '') problems.push(`${where}: unit is missing`);
    if (!(item.per > 0)) problems.push(`${where}: per must be a positive number`);
    if (!(item.price >= 0)) problems.push(`${where}: price must be a number ≥ 0`);
    if (typeof item.source !== 'string' || !item.source.startsWith('https://'))
      problems.push(`${where}: source must be an https URL`);
    if (item.tiers !== undefined) {
      const tiers = item.tiers;
      if (!Array.isArray(tiers) || tiers.length === 0) problems.push(`${where}: tiers must be a non-empty list`);
      else {
        if (tiers[0]!.price !== item.price) problems.push(`${where}: price must equal the first tier's price`);
        if (tiers.at(-1)!.up_to !== null) problems.push(`${where}: the last tier must have up_to null`);
        let previous = 0;
        tiers.forEach((t, i) => {
          if (!(t.price >= 0)) problems.push(`${where}: tier ${i} price must be ≥ 0`);
          if (i < tiers.length - 1) {
            if (!(typeof t.up_to === 'number' && t.up_to > previous))
              problems.push(`${where}: tier ${i} up_to must grow`);
            else previous = t.up_to;
          }
        });
      }
    }
  }
  if (problems.length > 0) throw new Error(`price file: ${problems.join('; ')}`);
  return file;
}

export function loadPrices(path: URL | string = PRICES_PATH): PriceFile {
  return validatePrices(JSON.parse(readFileSync(path, 'utf8')));
}

/** USD for one unit at the first (lowest-volume) tier: what a marginal unit costs at small volume. */
export function unitPrice(item: PriceItem): number {
  return item.price / item.per;
}

/** USD for `quantity` units in one month, walking the volume tiers (each unit at the price of the tier it falls in). */
export function tieredCost(quantity: number, item: PriceItem): number {
  if (!(quantity > 0)) return 0;
  if (!item.tiers) return (quantity * item.price) / item.per;
  let cost = 0;
  let floor = 0;
  for (const tier of item.tiers) {
    const ceiling = tier.up_to ?? Number.POSITIVE_INFINITY;
    const inTier = Math.min(quantity, ceiling) - floor;
    if (inTier > 0) cost += (inTier * tier.price) / item.per;
    if (quantity <= ceiling) break;
    floor = ceiling;
  }
  return cost;
}

/** USD per million flows for `perFlow` units each, at the first tier's price. */
export function perMillionFlows(perFlow: number, item: PriceItem): number {
  return perFlow * 1_000_000 * unitPrice(item);
}

// ---- Unit conversions ---------------------------------------------------------------------------------------

/** Lambda bills duration rounded up to the next 1 ms (at least 1 ms). */
export function billedMs(durationMs: number): number {
  return Math.max(1, Math.ceil(durationMs - 1e-9));
}

/** GB-seconds of one invocation: configured memory (MB / 1024) × billed duration in seconds. */
export function gbSeconds(billedDurationMs: number, memoryMb: number): number {
  return (memoryMb / 1024) * (billedDurationMs / 1000);
}

/** DynamoDB write request units for writing an item of `bytes`: 1 per started KB, ×2 in a transaction. */
export function writeUnits(bytes: number, opts: { transactional?: boolean } = {}): number {
  return Math.max(1, Math.ceil(bytes / 1024)) * (opts.transactional ? 2 : 1);
}

/**
 * DynamoDB read request units for reading `bytes`: 1 per started 4 KB when strongly consistent, half when eventually
 * consistent, ×2 in a transaction (transactional reads are always consistent). Nothing found still costs the minimum.
 */
export function readUnits(bytes: number, opts: { consistent?: boolean; transactional?: boolean } = {}): number {
  const units = Math.max(1, Math.ceil(bytes / 4096));
  if (opts.transactional) return units * 2;
  return opts.consistent ? units : units / 2;
}

/** SNS publishes and SQS requests are billed per started 64 KB of payload. */
export function chunks64k(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / 65536));
}

/** Bytes → GB as CloudWatch bills them (GiB, 2^30 bytes). */
export function gigabytes(bytes: number): number {
  return bytes / 2 ** 30;
}

// ---- Display ------------------------------------------------------------------------------------------------

/** Half-up rounding to `decimals` places, free of binary artefacts (1.005 → 1.01). */
export function roundTo(value: number, decimals: number): number {
  const factor = 10 ** decimals;
  return Math.round((value + Math.sign(value) * Number.EPSILON * Math.abs(value)) * factor) / factor;
}

/**
 * A dollar figure for the tables: `–` for exactly 0, `<0.01` for a positive amount below half a cent, otherwise two
 * decimals with thousands separators (e.g. 1,234.57).
 */
export function formatUsd(value: number): string {
  if (value === 0) return '–';
  if (value > 0 && value < 0.005) return '<0.01';
  return roundTo(value, 2).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

/** A count for the tables: integers as is, others with up to `decimals` significant decimals (0.5, 1.25, 0.033). */
export function formatCount(value: number, decimals = 3): string {
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return roundTo(value, decimals).toLocaleString('en-US', { maximumFractionDigits: decimals });
}
