CREATE TABLE sco_juror (
	id VARCHAR(64) NOT NULL,
	name VARCHAR NOT NULL,
	affiliation VARCHAR NOT NULL,
	expertise JSON NOT NULL,
	conflicts JSON NOT NULL,
	active BOOLEAN NOT NULL,
	PRIMARY KEY (id)
);
CREATE TABLE sco_proposal (
	id VARCHAR(64) NOT NULL,
	cycle_year INTEGER NOT NULL,
	data JSON NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_sco_proposal_cycle_year ON sco_proposal (cycle_year);
CREATE TABLE sco_entrants (
	cycle_year INTEGER NOT NULL,
	eligible_ids JSON NOT NULL,
	PRIMARY KEY (cycle_year)
);
CREATE TABLE sco_stage (
	cycle_year INTEGER NOT NULL,
	stage VARCHAR(32) NOT NULL,
	state VARCHAR NOT NULL,
	config JSON NOT NULL,
	proposals JSON NOT NULL,
	deadline DATETIME NOT NULL,
	fully_scored_sent BOOLEAN NOT NULL,
	unscored INTEGER,
	ranking JSON,
	shortlist JSON,
	announcement_no VARCHAR,
	closed_summary JSON,
	window_until DATETIME,
	final_rows JSON,
	final_summary JSON,
	PRIMARY KEY (cycle_year, stage)
);
CREATE TABLE sco_assignment (
	cycle_year INTEGER NOT NULL,
	stage VARCHAR(32) NOT NULL,
	proposal_id VARCHAR(64) NOT NULL,
	juror_id VARCHAR(64) NOT NULL,
	extra BOOLEAN NOT NULL,
	PRIMARY KEY (cycle_year, stage, proposal_id, juror_id)
);
CREATE TABLE sco_score (
	id INTEGER NOT NULL,
	cycle_year INTEGER NOT NULL,
	stage VARCHAR(32) NOT NULL,
	juror_id VARCHAR(64) NOT NULL,
	proposal_id VARCHAR(64) NOT NULL,
	revision INTEGER NOT NULL,
	latest BOOLEAN NOT NULL,
	"values" JSON NOT NULL,
	weighted_total FLOAT NOT NULL,
	comment VARCHAR,
	at DATETIME NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_sco_score_stage ON sco_score (cycle_year, stage, proposal_id);
CREATE TABLE sco_objection (
	id VARCHAR(64) NOT NULL,
	cycle_year INTEGER NOT NULL,
	stage VARCHAR(32) NOT NULL,
	proposal_id VARCHAR(64) NOT NULL,
	filer VARCHAR NOT NULL,
	reason VARCHAR NOT NULL,
	filed_at DATETIME NOT NULL,
	decision VARCHAR,
	decision_reason VARCHAR,
	decided_by VARCHAR,
	PRIMARY KEY (id)
);
CREATE TABLE sco_counter (
	cycle_year INTEGER NOT NULL,
	name VARCHAR(32) NOT NULL,
	value INTEGER NOT NULL,
	PRIMARY KEY (cycle_year, name)
);
CREATE TABLE scoring_outbox (
	seq INTEGER NOT NULL,
	event_id VARCHAR(200) NOT NULL,
	subject VARCHAR(300) NOT NULL,
	payload TEXT NOT NULL,
	created_at DATETIME NOT NULL,
	published_at DATETIME,
	PRIMARY KEY (seq),
	UNIQUE (event_id)
);
CREATE INDEX ix_scoring_outbox_published_at ON scoring_outbox (published_at);
CREATE TABLE scoring_inbox (
	consumer VARCHAR(100) NOT NULL,
	event_id VARCHAR(200) NOT NULL,
	subject VARCHAR(300) NOT NULL,
	received_at DATETIME NOT NULL,
	PRIMARY KEY (consumer, event_id)
);
CREATE TABLE scoring_commands (
	request_id VARCHAR(200) NOT NULL,
	command VARCHAR(100) NOT NULL,
	payload_hash VARCHAR(64) NOT NULL,
	reply TEXT NOT NULL,
	ok BOOLEAN NOT NULL,
	created_at DATETIME NOT NULL,
	PRIMARY KEY (request_id, command)
);
