-- 1. Agents Table - Core agent registry
CREATE TABLE agents (
    id TEXT PRIMARY KEY,                    -- Unique agent identifier
    name TEXT NOT NULL,                     -- Human-readable agent name
    type TEXT NOT NULL,                     -- Agent type (66 available types)
    status TEXT DEFAULT 'active',          -- 'active', 'idle', 'busy', 'terminated'
    capabilities TEXT,                      -- JSON array of capabilities
    created_at INTEGER DEFAULT (strftime('%s', 'now')), -- Unix timestamp
    metadata TEXT,                          -- JSON object for additional data
    last_activity INTEGER DEFAULT (strftime('%s', 'now')), -- Last activity timestamp
    resource_usage TEXT,                    -- JSON object for resource tracking
    performance_score REAL DEFAULT 0.0     -- Performance rating (0.0-1.0)
);

-- 2. Swarms Table - Swarm coordination and topology
CREATE TABLE swarms (
    id TEXT PRIMARY KEY,                    -- Unique swarm identifier
    topology TEXT NOT NULL,                -- 'hierarchical', 'mesh', 'ring', 'star'
    max_agents INTEGER DEFAULT 8,          -- Maximum agents in swarm
    strategy TEXT DEFAULT 'parallel',      -- Execution strategy
    status TEXT DEFAULT 'initializing',    -- Current swarm status
    created_at INTEGER DEFAULT (strftime('%s', 'now')),
    config TEXT,                            -- JSON configuration
    performance_metrics TEXT,              -- JSON performance data
    active_agents INTEGER DEFAULT 0,       -- Current active agent count
    completed_tasks INTEGER DEFAULT 0,     -- Total completed tasks
    success_rate REAL DEFAULT 0.0          -- Task success rate
);

-- 3. Tasks Table - Task execution and tracking
CREATE TABLE tasks (
    id TEXT PRIMARY KEY,                    -- Unique task identifier
    swarm_id TEXT,                         -- Associated swarm
    agent_id TEXT,                         -- Assigned agent
    description TEXT NOT NULL,             -- Task description
    status TEXT DEFAULT 'pending',         -- 'pending', 'running', 'completed', 'failed'
    priority TEXT DEFAULT 'medium',        -- 'low', 'medium', 'high', 'critical'
    dependencies TEXT,                      -- JSON array of dependency task IDs
    started_at INTEGER,                     -- Task start timestamp
    completed_at INTEGER,                   -- Task completion timestamp
    result TEXT,                           -- JSON task result
    error_message TEXT,                    -- Error details if failed
    progress REAL DEFAULT 0.0,            -- Completion progress (0.0-1.0)
    estimated_duration INTEGER,           -- Estimated duration in seconds
    actual_duration INTEGER,              -- Actual duration in seconds
    retry_count INTEGER DEFAULT 0,        -- Number of retry attempts
    FOREIGN KEY (swarm_id) REFERENCES swarms(id),
    FOREIGN KEY (agent_id) REFERENCES agents(id)
);

-- 4. Memory Store Table - Persistent key-value storage
CREATE TABLE memory_store (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,                     -- Memory key
    value TEXT NOT NULL,                   -- Stored value (JSON)
    namespace TEXT DEFAULT 'default',     -- Logical namespace
    agent_id TEXT,                         -- Owner agent (optional)
    swarm_id TEXT,                         -- Owner swarm (optional)
    ttl INTEGER,                           -- Expiration timestamp
    created_at INTEGER DEFAULT (strftime('%s', 'now')),
    updated_at INTEGER DEFAULT (strftime('%s', 'now')),
    access_count INTEGER DEFAULT 0,       -- Access frequency counter
    size_bytes INTEGER DEFAULT 0,         -- Memory size tracking
    tags TEXT,                            -- JSON array of tags
    encrypted BOOLEAN DEFAULT 0,          -- Encryption flag
    UNIQUE(key, namespace),
    FOREIGN KEY (agent_id) REFERENCES agents(id),
    FOREIGN KEY (swarm_id) REFERENCES swarms(id)
);

-- 5. Metrics Table - Performance and monitoring data
CREATE TABLE metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entity_type TEXT NOT NULL,            -- 'agent', 'swarm', 'task', 'system'
    entity_id TEXT NOT NULL,              -- ID of the entity being measured
    metric_name TEXT NOT NULL,            -- Name of the metric
    metric_value REAL NOT NULL,           -- Numeric value
    timestamp INTEGER DEFAULT (strftime('%s', 'now')),
    metadata TEXT,                        -- JSON additional metadata
    aggregation_period TEXT,              -- 'minute', 'hour', 'day'
    unit TEXT,                            -- Metric unit (ms, mb, count, etc.)
    source TEXT                           -- Source of metric collection
);

-- 6. Sessions Table - Session and workflow management
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,                   -- Unique session identifier
    swarm_id TEXT,                        -- Associated swarm
    type TEXT NOT NULL,                   -- 'hive-mind', 'workflow', 'batch', 'interactive'
    status TEXT DEFAULT 'active',        -- Session status
    created_at INTEGER DEFAULT (strftime('%s', 'now')),
    ended_at INTEGER,                     -- Session end timestamp
    context TEXT,                         -- JSON session context
    performance_data TEXT,               -- JSON performance metrics
    user_id TEXT,                        -- User identifier
    project_id TEXT,                     -- Project identifier
    tags TEXT,                           -- JSON array of session tags
    checkpoint_data TEXT,                -- JSON checkpoint/resume data
    FOREIGN KEY (swarm_id) REFERENCES swarms(id)
);

-- 7. Consensus Decisions Table - Collective decision tracking
CREATE TABLE consensus_decisions (
    id TEXT PRIMARY KEY,                   -- Unique decision identifier
    swarm_id TEXT NOT NULL,               -- Decision-making swarm
    proposal TEXT NOT NULL,               -- Proposal description
    decision TEXT NOT NULL,               -- Final decision
    confidence REAL,                      -- Decision confidence (0.0-1.0)
    participants INTEGER,                 -- Number of participating agents
    timestamp INTEGER DEFAULT (strftime('%s', 'now')),
    voting_data TEXT,                     -- JSON detailed voting information
    consensus_type TEXT,                  -- 'majority', 'weighted', 'byzantine'
    threshold REAL,                       -- Required consensus threshold
    duration_ms INTEGER,                  -- Time to reach consensus
    dissenting_votes INTEGER DEFAULT 0,  -- Number of dissenting votes
    FOREIGN KEY (swarm_id) REFERENCES swarms(id)
);

-- 8. Neural Patterns Table - AI learning and pattern storage
CREATE TABLE neural_patterns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pattern_type TEXT NOT NULL,           -- Type of neural pattern
    pattern_data TEXT NOT NULL,           -- JSON neural weights/data
    accuracy REAL,                        -- Pattern accuracy score
    training_iterations INTEGER,         -- Number of training iterations
    created_at INTEGER DEFAULT (strftime('%s', 'now')),
    updated_at INTEGER DEFAULT (strftime('%s', 'now')),
    agent_type TEXT,                      -- Associated agent type
    domain TEXT,                          -- Problem domain
    validation_score REAL,               -- Validation accuracy
    usage_count INTEGER DEFAULT 0,       -- Usage frequency
    performance_impact REAL DEFAULT 0.0  -- Performance improvement measure
);

-- 9. Workflow Definitions Table - Reusable workflow templates
CREATE TABLE workflows (
    id TEXT PRIMARY KEY,                   -- Unique workflow identifier
    name TEXT NOT NULL,                   -- Workflow name
    definition TEXT NOT NULL,             -- JSON workflow definition
    version INTEGER DEFAULT 1,           -- Workflow version
    created_by TEXT,                      -- Creator identifier
    created_at INTEGER DEFAULT (strftime('%s', 'now')),
    updated_at INTEGER DEFAULT (strftime('%s', 'now')),
    execution_count INTEGER DEFAULT 0,   -- Number of executions
    success_rate REAL DEFAULT 0.0,       -- Execution success rate
    category TEXT,                        -- Workflow category
    tags TEXT,                           -- JSON array of tags
    dependencies TEXT,                   -- JSON array of dependencies
    estimated_duration INTEGER          -- Estimated execution time
);

-- 10. Hooks Table - Event-driven automation
CREATE TABLE hooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_type TEXT NOT NULL,            -- Event that triggers hook
    handler TEXT NOT NULL,               -- Function or command to execute
    priority INTEGER DEFAULT 0,         -- Execution priority
    enabled BOOLEAN DEFAULT 1,          -- Hook enabled/disabled
    metadata TEXT,                       -- JSON configuration data
    created_at INTEGER DEFAULT (strftime('%s', 'now')),
    last_executed INTEGER,              -- Last execution timestamp
    execution_count INTEGER DEFAULT 0,  -- Number of executions
    success_count INTEGER DEFAULT 0,    -- Successful executions
    failure_count INTEGER DEFAULT 0,    -- Failed executions
    condition_expr TEXT                  -- Conditional execution expression
);

-- 11. Configuration Table - System configuration storage
CREATE TABLE configuration (
    key TEXT PRIMARY KEY,                 -- Configuration key
    value TEXT NOT NULL,                  -- Configuration value (JSON)
    category TEXT,                        -- Configuration category
    description TEXT,                     -- Human-readable description
    updated_at INTEGER DEFAULT (strftime('%s', 'now')),
    data_type TEXT DEFAULT 'string',     -- 'string', 'number', 'boolean', 'object'
    validation_rules TEXT,               -- JSON validation rules
    is_sensitive BOOLEAN DEFAULT 0,      -- Sensitive data flag
    environment TEXT,                     -- 'development', 'production', 'test'
    version INTEGER DEFAULT 1            -- Configuration version
);

-- 12. Audit Log Table - Comprehensive audit trail
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entity_type TEXT NOT NULL,           -- Type of entity ('agent', 'swarm', 'task', etc.)
    entity_id TEXT NOT NULL,             -- ID of the entity
    action TEXT NOT NULL,                -- Action performed
    actor_id TEXT,                       -- Who performed the action
    timestamp INTEGER DEFAULT (strftime('%s', 'now')),
    details TEXT,                        -- JSON audit details
    ip_address TEXT,                     -- Source IP address
    user_agent TEXT,                     -- User agent string
    session_id TEXT,                     -- Session identifier
    before_state TEXT,                   -- JSON state before action
    after_state TEXT,                    -- JSON state after action
    success BOOLEAN DEFAULT 1           -- Action success/failure
);

-- Primary performance indexes for optimal query performance
CREATE INDEX idx_agents_type ON agents(type);
CREATE INDEX idx_agents_status ON agents(status);
CREATE INDEX idx_agents_last_activity ON agents(last_activity);

CREATE INDEX idx_swarms_status ON swarms(status);
CREATE INDEX idx_swarms_topology ON swarms(topology);

CREATE INDEX idx_tasks_status ON tasks(status);
CREATE INDEX idx_tasks_priority ON tasks(priority);
CREATE INDEX idx_tasks_swarm_id ON tasks(swarm_id);
CREATE INDEX idx_tasks_agent_id ON tasks(agent_id);
CREATE INDEX idx_tasks_created_at ON tasks(started_at);

CREATE INDEX idx_memory_key ON memory_store(key, namespace);
CREATE INDEX idx_memory_namespace ON memory_store(namespace);
CREATE INDEX idx_memory_ttl ON memory_store(ttl);
CREATE INDEX idx_memory_agent_id ON memory_store(agent_id);
CREATE INDEX idx_memory_swarm_id ON memory_store(swarm_id);
CREATE INDEX idx_memory_tags ON memory_store(tags);

CREATE INDEX idx_metrics_entity ON metrics(entity_type, entity_id);
CREATE INDEX idx_metrics_timestamp ON metrics(timestamp);
CREATE INDEX idx_metrics_name ON metrics(metric_name);

CREATE INDEX idx_sessions_status ON sessions(status);
CREATE INDEX idx_sessions_type ON sessions(type);
CREATE INDEX idx_sessions_created_at ON sessions(created_at);

CREATE INDEX idx_consensus_swarm_id ON consensus_decisions(swarm_id);
CREATE INDEX idx_consensus_timestamp ON consensus_decisions(timestamp);

CREATE INDEX idx_neural_patterns_type ON neural_patterns(pattern_type);
CREATE INDEX idx_neural_patterns_agent_type ON neural_patterns(agent_type);
CREATE INDEX idx_neural_patterns_accuracy ON neural_patterns(accuracy);

CREATE INDEX idx_workflows_category ON workflows(category);
CREATE INDEX idx_workflows_created_by ON workflows(created_by);

CREATE INDEX idx_hooks_event_type ON hooks(event_type);
CREATE INDEX idx_hooks_enabled ON hooks(enabled);

CREATE INDEX idx_config_category ON configuration(category);
CREATE INDEX idx_config_environment ON configuration(environment);

CREATE INDEX idx_audit_timestamp ON audit_log(timestamp);
CREATE INDEX idx_audit_entity ON audit_log(entity_type, entity_id);
CREATE INDEX idx_audit_actor ON audit_log(actor_id);
