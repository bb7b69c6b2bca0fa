//! The simulator speaking Bedrock and Vertex AI: event-stream frames, paths, token endpoint, metadata server.
