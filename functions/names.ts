// Names shared by the functions, the workflows (statemachines/*.asl.json) and the monitoring
// (infra/monitoring.ts), each defined once; test/unit/names.test.ts checks that the ASL and the monitoring use
// exactly these.

/** Errors the workflow's tasks end with, which the ASL's Retry and Catch clauses route on. */
export const WORKFLOW_ERRORS = {
  /** A callback task's deadline passed (the request expired, or a delivery attempt got no report). */
  timeout: 'States.Timeout',
  /** A delivery attempt failed in a way worth retrying (no answer, timeout, 5xx, 408, 429). */
  deliveryRetryable: 'Delivery.Retryable',
  /** The client's endpoint refused the notification (a redirect or a 4xx): final, dead-lettered. */
  deliveryRejected: 'Delivery.Rejected',
  /** Retries found no success within the delivery window: final, dead-lettered. */
  deliveryExhausted: 'Delivery.Exhausted',
  /** notify-device could not reach the device channel or found no request (retried, then the request fails). */
  notifyFailed: 'NotifyFailed',
  /** enqueue-delivery could not publish the delivery request (retried). */
  enqueueFailed: 'EnqueueFailed',
  /** enqueue-delivery found nothing to deliver (not retried). */
  nothingToDeliver: 'Delivery.NothingToDeliver',
} as const;

/** CloudWatch metrics the functions write in the Embedded Metric Format (dimension Server). */
export const METRICS = {
  namespace: 'CibaServer',
  deliveriesSucceeded: 'DeliveriesSucceeded',
  deliveryRetries: 'DeliveryRetries',
  deliveriesFailed: 'DeliveriesFailed',
  approvalToNotification: 'ApprovalToNotification',
  /** dispatch-notifications: one per channel send that reached its service (Web Push, SNS, SES, operator hook). */
  notificationsSent: 'NotificationsSent',
  /** dispatch-notifications: one per channel send that failed for good (refused, gone, or retries ran out). */
  notificationsFailed: 'NotificationsFailed',
  /** dispatch-notifications: a user with a pending request whom no channel reached (docs/notifications.md). */
  usersUnreachable: 'UsersUnreachable',
} as const;

export type MetricName = Exclude<(typeof METRICS)[keyof typeof METRICS], typeof METRICS.namespace>;
