// Whole-table reads for the operator's commands only (the admin CLI's lists); never on a request path.
import { DeleteCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { db, strip, table } from './table.ts';

/** Every item whose partition key starts with `prefix` and whose sort key is `sk`, stripped of the table's keys. */
export async function scanKind<T>(prefix: string, sk: string): Promise<T[]> {
  const items: T[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await db().send(
      new ScanCommand({
        TableName: table(),
        FilterExpression: 'begins_with(pk, :p) AND sk = :sk',
        ExpressionAttributeValues: { ':p': prefix, ':sk': sk },
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    for (const item of out.Items ?? []) items.push(strip<T>(item)!);
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

/** The raw keys of matching items (to delete them). */
export async function scanKeys(
  prefix: string,
  filter: { attribute: string; value: string },
): Promise<{ pk: string; sk: string }[]> {
  const keys: { pk: string; sk: string }[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await db().send(
      new ScanCommand({
        TableName: table(),
        FilterExpression: 'begins_with(pk, :p) AND #a = :v',
        ExpressionAttributeNames: { '#a': filter.attribute },
        ExpressionAttributeValues: { ':p': prefix, ':v': filter.value },
        ProjectionExpression: 'pk, sk',
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    for (const item of out.Items ?? []) keys.push({ pk: String(item.pk), sk: String(item.sk) });
    start = out.LastEvaluatedKey;
  } while (start);
  return keys;
}

/** Deletes items by their keys (operator commands). */
export async function deleteKeys(keys: readonly { pk: string; sk: string }[]): Promise<void> {
  for (const k of keys) await db().send(new DeleteCommand({ TableName: table(), Key: k }));
}
