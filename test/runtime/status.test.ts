/** The status line of a step whose worker was lost: Temporal's pending-activity facts in, one line out. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import proto from '@temporalio/proto';

import { retryingLine } from '../../infra/runs';

const { PendingActivityState, TimeoutType } = proto.temporal.api.enums.v1;
type Timestamp = NonNullable<proto.temporal.api.workflow.v1.IPendingActivityInfo['lastStartedTime']>;
// Timestamps come as protobuf Longs; a number reads the same through Number().
const at = (seconds: number) => ({ seconds, nanos: 0 }) as unknown as Timestamp;

describe('retryingLine', () => {
  it('names a lost worker and the attempt while the retry has not reported yet', () => {
    const lost = {
      attempt: 2,
      state: PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED,
      lastFailure: {
        message: 'activity Heartbeat timeout',
        timeoutFailureInfo: { timeoutType: TimeoutType.TIMEOUT_TYPE_HEARTBEAT },
      },
      lastHeartbeatTime: at(100),
      lastStartedTime: at(90),
    };
    assert.equal(retryingLine(lost), 'retrying: worker lost (attempt 2)');
    // Picked up by another worker, no heartbeat of its own yet: still retrying.
    const started = {
      ...lost,
      state: PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
      lastStartedTime: at(131),
    };
    assert.equal(retryingLine(started), 'retrying: worker lost (attempt 2)');
    // Once the new attempt heartbeats, its own progress is shown instead.
    assert.equal(retryingLine({ ...started, lastHeartbeatTime: at(132) }), undefined);
    assert.equal(retryingLine({ ...lost, attempt: 1 }), undefined);
  });

  it('says why the previous attempt ended otherwise', () => {
    const base = { attempt: 3, state: PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED };
    assert.equal(
      retryingLine({ ...base, lastFailure: { message: 'x', canceledFailureInfo: {} } }),
      'retrying: worker stopped (attempt 3)',
    );
    assert.equal(
      retryingLine({ ...base, lastFailure: { message: 'connect ECONNREFUSED 127.0.0.1:9000\nstack' } }),
      'retrying: connect ECONNREFUSED 127.0.0.1:9000 (attempt 3)',
    );
  });
});
