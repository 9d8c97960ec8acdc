// Step Functions: one Standard execution per authentication request (statemachines/ciba.asl.json).
// The execution name and input carry only the non-secret request id, the client id, mode and expiry.
import { SendTaskFailureCommand, SendTaskSuccessCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { awsClient } from './aws.ts';
import { config } from '../config.ts';
import type { DeliveryMode } from '../core/model.ts';
import { WORKFLOW_ERRORS } from '../names.ts';

const sfnClient = awsClient('StepFunctions', () => new SFNClient({}));

export type WorkflowInput = { requestId: string; clientId: string; mode: DeliveryMode; expiresIn: number };

export async function startAuthWorkflow(input: WorkflowInput): Promise<string> {
  const out = await sfnClient().send(
    new StartExecutionCommand({
      stateMachineArn: config().stateMachineArn,
      name: input.requestId,
      input: JSON.stringify(input),
    }),
  );
  return out.executionArn!;
}

/** Errors that mean the task is already finished (timed out, decided by a concurrent caller, execution gone). */
const FINISHED = new Set(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken', 'ExecutionDoesNotExist']);

/**
 * Resume the waiting execution with the user's decision. Returns false when the task had already finished;
 * the decision is in DynamoDB either way, which is what the token endpoint reads.
 */
export async function sendDecision(taskToken: string, decision: 'approved' | 'denied'): Promise<boolean> {
  try {
    if (decision === 'approved') {
      await sfnClient().send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify({ decision }) }));
    } else {
      await sfnClient().send(
        new SendTaskFailureCommand({
          taskToken,
          error: WORKFLOW_ERRORS.denied,
          cause: 'The end-user denied the request.',
        }),
      );
    }
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
