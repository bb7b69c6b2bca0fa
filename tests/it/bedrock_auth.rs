//! AWS auth for Bedrock: SigV4 against the smithy-rs vectors, credential sources, clock skew.
