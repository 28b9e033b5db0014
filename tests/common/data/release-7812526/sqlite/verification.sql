CREATE TABLE ver_proposal (
	id VARCHAR(64) NOT NULL,
	cycle_year INTEGER NOT NULL,
	forwarded BOOLEAN NOT NULL,
	snapshot JSON NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_ver_proposal_cycle_year ON ver_proposal (cycle_year);
CREATE TABLE ver_run (
	cycle_year INTEGER NOT NULL,
	state VARCHAR NOT NULL,
	deadline DATETIME NOT NULL,
	call_closed_at DATETIME NOT NULL,
	rules JSON NOT NULL,
	summary JSON,
	PRIMARY KEY (cycle_year)
);
CREATE TABLE ver_decision (
	proposal_id VARCHAR(64) NOT NULL,
	cycle_year INTEGER NOT NULL,
	automatic VARCHAR NOT NULL,
	reasons JSON NOT NULL,
	final VARCHAR,
	overrides JSON NOT NULL,
	PRIMARY KEY (proposal_id)
);
CREATE INDEX ix_ver_decision_cycle_year ON ver_decision (cycle_year);
CREATE TABLE ver_wbk (
	cycle_year INTEGER NOT NULL,
	unit_code VARCHAR(64) NOT NULL,
	unit_name VARCHAR,
	agency_code VARCHAR,
	result JSON NOT NULL,
	overrides JSON NOT NULL,
	PRIMARY KEY (cycle_year, unit_code)
);
CREATE TABLE verification_outbox (
	seq INTEGER NOT NULL,
	event_id VARCHAR(200) NOT NULL,
	subject VARCHAR(300) NOT NULL,
	payload TEXT NOT NULL,
	created_at DATETIME NOT NULL,
	published_at DATETIME,
	PRIMARY KEY (seq),
	UNIQUE (event_id)
);
CREATE INDEX ix_verification_outbox_published_at ON verification_outbox (published_at);
CREATE TABLE verification_inbox (
	consumer VARCHAR(100) NOT NULL,
	event_id VARCHAR(200) NOT NULL,
	subject VARCHAR(300) NOT NULL,
	received_at DATETIME NOT NULL,
	PRIMARY KEY (consumer, event_id)
);
CREATE TABLE verification_commands (
	request_id VARCHAR(200) NOT NULL,
	command VARCHAR(100) NOT NULL,
	payload_hash VARCHAR(64) NOT NULL,
	reply TEXT NOT NULL,
	ok BOOLEAN NOT NULL,
	created_at DATETIME NOT NULL,
	PRIMARY KEY (request_id, command)
);
