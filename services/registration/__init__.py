"""Registration: the participant registry, the call for proposals of each cycle, the three-level
submission chain (unit → agency admin → secretariat) and the exact per-agency quota."""
