// Authentication devices: one item per device (`DEVICE#<id>`, found by the device assertion's `iss`), indexed by
// user (GSI `USERDEV#<sub>`) to reach all of a user's devices; a per-user map of device ids (`USER#<sub>`/`DEVICES`)
// that a conditional write keeps under the cap; and one-time enrolment codes (`ENROL#<sha256(code)>`).
import { DeleteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { Device, StoredChannel } from '../../core/model.ts';
import { TABLE } from '../../../infra/table.ts';
import { db, isConditionFailure, strip, table, updateIf } from './table.ts';

const deviceKey = (id: string) => ({ pk: `DEVICE#${id}`, sk: 'DEVICE' });
const slotsKey = (sub: string) => ({ pk: `USER#${sub}`, sk: 'DEVICES' });
const codeKey = (hash: string) => ({ pk: `ENROL#${hash}`, sk: 'CODE' });

/** Stores a device (idempotent) and indexes it under its user. Does not count against the cap: see claimDeviceSlot. */
export async function putDevice(device: Device): Promise<void> {
  await db().send(
    new PutCommand({
      TableName: table(),
      Item: {
        ...deviceKey(device.device_id),
        ...device,
        jtis: {},
        [TABLE.userIndex.partitionKey]: `USERDEV#${device.sub}`,
        [TABLE.userIndex.sortKey]: `${String(device.created_at ?? 0).padStart(15, '0')}#${device.device_id}`,
      },
    }),
  );
}

export async function getDevice(deviceId: string): Promise<Device | undefined> {
  const out = await db().send(new GetCommand({ TableName: table(), Key: deviceKey(deviceId) }));
  return deviceOf(out.Item);
}

/** A device row as the rest of the code sees it: without its replay record and its user's mirrored flag. */
function deviceOf(item: Record<string, unknown> | undefined): Device | undefined {
  const row = strip<Device & { jtis?: unknown; user_disabled?: unknown }>(item);
  if (!row) return undefined;
  const { jtis: _j, user_disabled: _u, ...device } = row;
  return device;
}

export type DeviceTouch =
  | { kind: 'ok'; jtis: Readonly<Record<string, number>> }
  | { kind: 'replayed' }
  | { kind: 'gone' }
  | { kind: 'disabled' };

/**
 * One device-API call of a verified device assertion, in one conditional write on the device row: the device still
 * exists, its user is not disabled (`user_disabled`, mirrored by setDevicesUserDisabled), and the assertion's `jti`
 * was not seen before; the jti is then kept in the row's `jtis` map (jti → exp, epoch s) until `exp`. `prune`: jtis
 * the caller saw expire in an earlier answer, removed in the same write (so the map holds only live assertions).
 */
export async function touchDevice(
  deviceId: string,
  jti: string,
  exp: number,
  prune: readonly string[],
): Promise<DeviceTouch> {
  const dropped = prune.filter((p) => p !== jti).slice(0, 25);
  const write = () =>
    updateIf({
      Key: deviceKey(deviceId),
      UpdateExpression: `SET jtis.#j = :exp${dropped.length ? ` REMOVE ${dropped.map((_, i) => `jtis.#p${i}`).join(', ')}` : ''}`,
      ConditionExpression:
        'attribute_exists(pk) AND attribute_not_exists(user_disabled) AND attribute_not_exists(jtis.#j)',
      ExpressionAttributeNames: { '#j': jti, ...Object.fromEntries(dropped.map((p, i) => [`#p${i}`, p])) },
      ExpressionAttributeValues: { ':exp': exp },
      ReturnValues: 'ALL_NEW',
    });
  let row: Record<string, unknown> | undefined;
  try {
    row = await write();
  } catch (e) {
    // A row stored before replay records lived in it has no map yet: give it one, then write again.
    if ((e as { name?: string }).name !== 'ValidationException') throw e;
    await updateIf({
      Key: deviceKey(deviceId),
      UpdateExpression: 'SET jtis = :empty',
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(jtis)',
      ExpressionAttributeValues: { ':empty': {} },
    });
    row = await write();
  }
  if (row) return { kind: 'ok', jtis: (row.jtis as Record<string, number> | undefined) ?? {} };
  const out = await db().send(new GetCommand({ TableName: table(), Key: deviceKey(deviceId), ConsistentRead: true }));
  if (!out.Item) return { kind: 'gone' };
  if (out.Item.user_disabled) return { kind: 'disabled' };
  return { kind: 'replayed' };
}

/** Mirrors the user's `disabled` flag on each of the user's devices (checked by touchDevice). */
export async function setDevicesUserDisabled(sub: string, disabled: boolean): Promise<void> {
  for (const device of await listUserDevices(sub))
    await updateIf({
      Key: deviceKey(device.device_id),
      UpdateExpression: disabled ? 'SET user_disabled = :yes' : 'REMOVE user_disabled',
      ConditionExpression: 'attribute_exists(pk)',
      ...(disabled ? { ExpressionAttributeValues: { ':yes': true } } : {}),
    });
}

/** Every device of a user, oldest first. */
export async function listUserDevices(sub: string): Promise<Device[]> {
  const devices: Device[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await db().send(
      new QueryCommand({
        TableName: table(),
        IndexName: TABLE.userIndex.name,
        KeyConditionExpression: '#g = :g',
        ExpressionAttributeNames: { '#g': TABLE.userIndex.partitionKey },
        ExpressionAttributeValues: { ':g': `USERDEV#${sub}` },
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    for (const item of out.Items ?? []) devices.push(deviceOf(item)!);
    start = out.LastEvaluatedKey;
  } while (start);
  return devices;
}

/**
 * Reserves a place for `deviceId` among the user's devices: a conditional write keeps the user under `cap` however
 * many enrolments race. False when the user already has `cap` devices. Idempotent for the same id.
 */
export async function claimDeviceSlot(sub: string, deviceId: string, cap: number, now: number): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const claimed = await updateIf({
      Key: slotsKey(sub),
      UpdateExpression: 'SET #d.#id = :now',
      ConditionExpression: 'attribute_exists(#d) AND (size(#d) < :cap OR attribute_exists(#d.#id))',
      ExpressionAttributeNames: { '#d': 'devices', '#id': deviceId },
      ExpressionAttributeValues: { ':now': now, ':cap': cap },
    });
    if (claimed) return true;
    if (attempt > 0) return false; // the map exists now: the user is at the cap
    // No map yet (first device of this user), or a full one: create it empty (only if absent), then claim again. A
    // concurrent creator wins harmlessly: the second claim uses its map.
    await db()
      .send(
        new PutCommand({
          TableName: table(),
          Item: { ...slotsKey(sub), devices: {} },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      )
      .catch((e: unknown) => {
        if (!isConditionFailure(e)) throw e;
      });
  }
  return false;
}

/** Gives a device's place back (the device was removed, or its enrolment did not complete). */
export async function releaseDeviceSlot(sub: string, deviceId: string): Promise<void> {
  await updateIf({
    Key: slotsKey(sub),
    UpdateExpression: 'REMOVE #d.#id',
    ConditionExpression: 'attribute_exists(#d)',
    ExpressionAttributeNames: { '#d': 'devices', '#id': deviceId },
  });
}

/**
 * Removes a device of `sub` (its assertions fail from then on) and gives its place back. Returns the removed device,
 * or undefined when no such device belongs to `sub`.
 */
export async function removeDevice(sub: string, deviceId: string): Promise<Device | undefined> {
  try {
    const out = await db().send(
      new DeleteCommand({
        TableName: table(),
        Key: deviceKey(deviceId),
        ConditionExpression: '#sub = :sub',
        ExpressionAttributeNames: { '#sub': 'sub' },
        ExpressionAttributeValues: { ':sub': sub },
        ReturnValues: 'ALL_OLD',
      }),
    );
    await releaseDeviceSlot(sub, deviceId);
    return deviceOf(out.Attributes);
  } catch (e) {
    if (isConditionFailure(e)) return undefined;
    throw e;
  }
}

/**
 * Sets or clears how a device of `sub` is reached. Returns the channel it replaced (`previous` undefined when there
 * was none), or undefined when the device is gone.
 */
export async function setDeviceChannel(
  sub: string,
  deviceId: string,
  channel: StoredChannel | undefined,
): Promise<{ previous: StoredChannel | undefined } | undefined> {
  const old = await updateIf({
    Key: deviceKey(deviceId),
    UpdateExpression: channel ? 'SET #c = :c' : 'REMOVE #c',
    ConditionExpression: '#sub = :sub',
    ExpressionAttributeNames: { '#c': 'channel', '#sub': 'sub' },
    ExpressionAttributeValues: { ':sub': sub, ...(channel ? { ':c': channel } : {}) },
    ReturnValues: 'ALL_OLD',
  });
  return old && { previous: old.channel as StoredChannel | undefined };
}

/**
 * Ends a channel the push service said is gone (404/410), unless the device registered another one meanwhile
 * (only the same endpoint is cleared).
 */
export async function dropWebPushChannel(deviceId: string, endpoint: string): Promise<void> {
  await updateIf({
    Key: deviceKey(deviceId),
    UpdateExpression: 'REMOVE #c',
    ConditionExpression: '#c.#s.#e = :e',
    ExpressionAttributeNames: { '#c': 'channel', '#s': 'subscription', '#e': 'endpoint' },
    ExpressionAttributeValues: { ':e': endpoint },
  });
}

// ---- enrolment codes (stored as SHA-256; single use; expiring) ----

export type EnrolmentCode = { sub: string; expires_at: number; used_at?: number; created_by?: string };

export async function putEnrolmentCode(hash: string, code: EnrolmentCode): Promise<void> {
  await db().send(
    new PutCommand({
      TableName: table(),
      Item: { ...codeKey(hash), ...code, ttl: Math.ceil(code.expires_at / 1000) },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
}

export async function getEnrolmentCode(hash: string): Promise<EnrolmentCode | undefined> {
  const out = await db().send(new GetCommand({ TableName: table(), Key: codeKey(hash), ConsistentRead: true }));
  return strip<EnrolmentCode>(out.Item);
}

/** Uses a code once: the code's record, or undefined when it is unknown, used or expired (exactly one use wins). */
export async function useEnrolmentCode(hash: string, now: number): Promise<EnrolmentCode | undefined> {
  const used = await updateIf({
    Key: codeKey(hash),
    UpdateExpression: 'SET used_at = :now',
    ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(used_at) AND expires_at > :now',
    ExpressionAttributeValues: { ':now': now },
    ReturnValues: 'ALL_NEW',
  });
  return used ? strip<EnrolmentCode>(used) : undefined;
}

/** Undoes this enrolment's use of a code (made at `usedAt`) when the enrolment could not complete. */
export async function restoreEnrolmentCode(hash: string, usedAt: number): Promise<void> {
  await updateIf({
    Key: codeKey(hash),
    UpdateExpression: 'REMOVE used_at',
    ConditionExpression: 'used_at = :at',
    ExpressionAttributeValues: { ':at': usedAt },
  });
}
