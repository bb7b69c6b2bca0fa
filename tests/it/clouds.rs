//! Failover across clouds: Bedrock Claude, Anthropic direct, Vertex Claude.
