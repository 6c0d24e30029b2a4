//! Scripted faults: lost flights, tail loss, blackouts, MTU black holes, idle timeout.
