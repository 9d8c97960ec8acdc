// Step Functions: one Standard execution per authentication request (statemachines/poll.asl.json for poll clients,
// notify.asl.json for ping and push). The execution name and input carry only the non-secret request id, the client
// id, mode and expiry.
import {
  DescribeExecutionCommand,
  RedriveExecutionCommand,
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { awsClient } from './aws.ts';
import { config } from '../config.ts';
import type { DeliveryMode } from '../core/model.ts';

const sfnClient = awsClient('StepFunctions', () => new SFNClient({}));

export type WorkflowInput = { requestId: string; clientId: string; mode: DeliveryMode; expiresIn: number };

export async function startAuthWorkflow(input: WorkflowInput): Promise<string> {
  const out = await sfnClient().send(
    new StartExecutionCommand({
      stateMachineArn: config().stateMachineArns[input.mode === 'poll' ? 'poll' : 'notify'],
      name: input.requestId,
      input: JSON.stringify(input),
    }),
  );
  return out.executionArn!;
}

/** Errors that mean the task is already finished (timed out, decided by a concurrent caller, execution gone). */
const FINISHED = new Set(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken', 'ExecutionDoesNotExist']);

/**
 * Resume the waiting execution with the decision: SendTaskSuccess `{outcome}` either way, so a denial ends the
 * execution as succeeded with its outcome in the output (not as a failed execution) in the wait's one transition.
 * Returns false when the task had already finished; the decision is in DynamoDB either way, which is what the token
 * endpoint reads.
 */
export async function sendDecision(
  taskToken: string,
  outcome: 'approved' | 'denied',
  detail: { cancelled?: true } = {},
): Promise<boolean> {
  try {
    await sfnClient().send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify({ outcome, ...detail }) }));
    return true;
  } catch (e) {
    if (FINISHED.has((e as { name?: string }).name ?? '')) return false;
    throw e;
  }
}

/**
 * Report one delivery attempt to the workflow's Deliver task: `output` on success, else the error the state machine
 * routes on (Delivery.Retryable is retried there). Returns false when the task had already finished.
 */
export async function sendDeliveryResult(
  taskToken: string,
  result: { output: Record<string, unknown> } | { error: string; cause: string },
): Promise<boolean> {
  try {
    if ('output' in result)
      await sfnClient().send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(result.output) }));
    else
      await sfnClient().send(
        new SendTaskFailureCommand({ taskToken, error: result.error, cause: result.cause.slice(0, 256) }),
      );
    return true;
  } catch (e) {
    if (FINISHED.has((e as { name?: string }).name ?? '')) return false;
    throw e;
  }
}

/** The ARN of a request's execution (named by its request id) in the workflow of its delivery mode. */
export function executionArnOf(requestId: string, mode: DeliveryMode): string {
  const machine = config().stateMachineArns[mode === 'poll' ? 'poll' : 'notify'];
  if (!machine.includes(':stateMachine:')) throw new Error(`no state machine ARN for ${mode} requests`);
  return `${machine.replace(':stateMachine:', ':execution:')}:${requestId}`;
}

/** An execution's status and redrive count (DescribeExecution), or undefined when there is no such execution. */
export async function describeExecution(
  executionArn: string,
): Promise<{ status: string; redriveCount: number; redriveStatus?: string; redriveStatusReason?: string } | undefined> {
  try {
    const out = await sfnClient().send(new DescribeExecutionCommand({ executionArn }));
    return {
      status: out.status ?? 'UNKNOWN',
      redriveCount: out.redriveCount ?? 0,
      ...(out.redriveStatus ? { redriveStatus: out.redriveStatus } : {}),
      ...(out.redriveStatusReason ? { redriveStatusReason: out.redriveStatusReason } : {}),
    };
  } catch (e) {
    if ((e as { name?: string }).name === 'ExecutionDoesNotExist') return undefined;
    throw e;
  }
}

/**
 * Redrive a failed execution (Step Functions Standard, within 14 days of its end): it runs again from the state it
 * failed in, under the same ARN. `clientToken` makes a repeated call idempotent.
 */
export async function redriveExecution(executionArn: string, clientToken?: string): Promise<Date | undefined> {
  const out = await sfnClient().send(
    new RedriveExecutionCommand({ executionArn, ...(clientToken ? { clientToken } : {}) }),
  );
  return out.redriveDate;
}
