// Local Step Functions: a small service speaking the Step Functions JSON protocol (awsJson1_0,
// `X-Amz-Target: AWSStepFunctions.<Op>`) that runs the ASL from statemachines/ with the engine of the npm package
// aws-local-stepfunctions, so the handlers' unchanged @aws-sdk/client-sfn works against it (only
// AWS_ENDPOINT_URL_SFN changes). It does what statemachines/*.asl.json, the handlers and the tests need:
//
// - Operations: StartExecution, SendTaskSuccess, SendTaskFailure (the handlers), DescribeExecution and
//   GetExecutionHistory (inspection), RedriveExecution (the admin CLI's `dead-letters redrive`). Others answer
//   UnknownOperationException.
// - RedriveExecution: only FAILED executions (this service ends none as ABORTED or TIMED_OUT), within 14 days of
//   their end; the execution runs again from the state it failed in, with that state's input (its retry counters
//   start from zero), under the same ARN. DescribeExecution gives redriveCount, redriveDate and redriveStatus
//   (with redriveStatusReason), the history an ExecutionRedriven event, $$.Execution.RedriveCount the count. The
//   redrive is journaled, so a restart resumes a redriven execution like any other. A clientToken makes a repeated
//   call idempotent while that redrive runs.
// - States: Task, Choice, Pass, Succeed, Fail. Task integrations: lambda:invoke.waitForTaskToken (functions
//   registered in-process by name), dynamodb:updateItem (the local DynamoDB), sqs:sendMessage (the local SQS); see
//   ./stepfunctions/integrations.ts for their results and error names.
// - Anything else is refused when the state machine is added, with the reason: Wait, Parallel and Map states, other
//   integrations or parameters, JSONata, Arguments/Output/Assign, HeartbeatSeconds, an execution TimeoutSeconds,
//   States.TaskFailed, $$.Execution.Input and $$.Execution.StartTime, and callback tasks without a timeout.
//
// Files: ./stepfunctions/api.ts (the operations), engine.ts (running executions, task tokens, timeouts, resume),
// journal.ts (executions, history and their persistence), definition.ts (checking and preparing the ASL),
// integrations.ts (the task integrations).
//
// Restarts (with a data dir, as `npm start` has): every change is journaled as it happens, and executions running
// when the process stopped (cleanly or killed) resume when their state machine is added again, as they would have
// kept running on AWS. ARN, name, start date and history continue; the resumed run does not repeat events.
// - A callback task that was waiting (its function had returned) waits again with the same task token and the rest
//   of its timeout; if that has passed while the service was down, it times out at once (its Retry/Catch run).
//   A callback answered just before the stop takes that answer as its result.
// - Any other execution re-runs the state it was in (from that state's input): a task interrupted mid-call, a task
//   in a Retry wait (the wait is not finished), or a state between tasks. Tasks are thus run at least once, as AWS
//   documents for its own tasks. Retry counters start again from zero.
// - Tokens that were closed before the restart (timed out, answered) are forgotten: a late SendTask* answers
//   TaskDoesNotExist instead of TaskTimedOut.
//
// Other differences from AWS Step Functions:
// - Task tokens are minted here (the engine has no $$.Task.Token): opaque 384-bit random strings.
// - This service, not the engine, times out callback tasks, reading TimeoutSecondsPath on the state's input as AWS
//   does (only `$.a.b` paths; at most 2,000,000 s). Other tasks get the engine's timeout (TimeoutSeconds, else 60 s).
// - Standard-workflow semantics only. The newest 1000 terminal executions are kept (memory and journal; option
//   retainExecutions), older ones are forgotten and their names can be used again (AWS: 90 days after they close).
//   No IAM, quotas, throttling, versions or aliases, StopExecution, Lambda timeouts.
// - The history is the engine's event log (ExecutionStarted, StateEntered/Exited/Failed/Retried/Caught,
//   ExecutionSucceeded/Failed), mapped to AWS event names by GetExecutionHistory (e.g. TaskStateEntered,
//   TaskTimedOut); AWS has more events (TaskScheduled, TaskStarted, TaskSubmitted...).
export { LocalStepFunctions, SfnError } from './stepfunctions/api.ts';
export type { LocalStepFunctionsOptions } from './stepfunctions/api.ts';
export type { LocalFunction } from './stepfunctions/integrations.ts';
export type { ExecutionRecord, ExecutionStatus, HistoryEvent } from './stepfunctions/journal.ts';
