// CloudWatch metrics through the Embedded Metric Format: one JSON log line, no API call (CloudWatch extracts the
// metrics from the function's log). Namespace CibaServer, dimension Server = CIBA_SERVER_NAME (CDK sets it per
// CibaServer, so two servers in one account keep their own series); infra/monitoring.ts alarms on them.
import { METRICS, type MetricName } from '../names.ts';
import { readSetting } from '../settings.ts';

export const METRICS_NAMESPACE = METRICS.namespace;

type Unit = 'Count' | 'Milliseconds';

export function emitMetrics(
  metrics: Partial<Record<MetricName, { value: number; unit: Unit }>>,
  properties: Record<string, unknown> = {},
): void {
  const names = Object.keys(metrics) as MetricName[];
  if (names.length === 0 || readSetting('metrics') === 'off') return;
  const record: Record<string, unknown> = {
    _aws: {
      Timestamp: Date.now(),
      CloudWatchMetrics: [
        {
          Namespace: METRICS_NAMESPACE,
          Dimensions: [['Server']],
          Metrics: names.map((Name) => ({ Name, Unit: metrics[Name]!.unit })),
        },
      ],
    },
    ...properties,
    Server: readSetting('serverName'),
  };
  for (const name of names) record[name] = metrics[name]!.value;
  process.stdout.write(JSON.stringify(record) + '\n');
}
