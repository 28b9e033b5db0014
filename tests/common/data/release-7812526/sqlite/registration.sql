CREATE TABLE reg_participant (
	code VARCHAR(64) NOT NULL,
	name VARCHAR NOT NULL,
	kind VARCHAR(16) NOT NULL,
	parent_code VARCHAR(64),
	active BOOLEAN NOT NULL,
	PRIMARY KEY (code)
);
CREATE INDEX ix_reg_participant_parent_code ON reg_participant (parent_code);
CREATE TABLE reg_call (
	cycle_year INTEGER NOT NULL,
	state VARCHAR NOT NULL,
	opens_at DATETIME NOT NULL,
	closes_at DATETIME NOT NULL,
	quota_per_agency INTEGER NOT NULL,
	next_seq INTEGER NOT NULL,
	closed_at DATETIME,
	summary JSON,
	PRIMARY KEY (cycle_year)
);
CREATE TABLE reg_proposal (
	id VARCHAR(64) NOT NULL,
	cycle_year INTEGER NOT NULL,
	unit_code VARCHAR(64) NOT NULL,
	agency_code VARCHAR(64) NOT NULL,
	title_key VARCHAR NOT NULL,
	"group" VARCHAR(16) NOT NULL,
	content JSON NOT NULL,
	status VARCHAR(16) NOT NULL,
	was_forwarded BOOLEAN NOT NULL,
	submitted_at DATETIME,
	forwarded_at DATETIME,
	returned_reason VARCHAR,
	updated_at DATETIME NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_reg_proposal_cycle_year ON reg_proposal (cycle_year);
CREATE INDEX ix_reg_proposal_unit_code ON reg_proposal (unit_code);
CREATE INDEX ix_reg_proposal_agency ON reg_proposal (cycle_year, agency_code, status);
CREATE TABLE reg_quota (
	cycle_year INTEGER NOT NULL,
	agency_code VARCHAR(64) NOT NULL,
	used INTEGER NOT NULL,
	PRIMARY KEY (cycle_year, agency_code)
);
CREATE TABLE registration_outbox (
	seq INTEGER NOT NULL,
	event_id VARCHAR(200) NOT NULL,
	subject VARCHAR(300) NOT NULL,
	payload TEXT NOT NULL,
	created_at DATETIME NOT NULL,
	published_at DATETIME,
	PRIMARY KEY (seq),
	UNIQUE (event_id)
);
CREATE INDEX ix_registration_outbox_published_at ON registration_outbox (published_at);
CREATE TABLE registration_inbox (
	consumer VARCHAR(100) NOT NULL,
	event_id VARCHAR(200) NOT NULL,
	subject VARCHAR(300) NOT NULL,
	received_at DATETIME NOT NULL,
	PRIMARY KEY (consumer, event_id)
);
CREATE TABLE registration_commands (
	request_id VARCHAR(200) NOT NULL,
	command VARCHAR(100) NOT NULL,
	payload_hash VARCHAR(64) NOT NULL,
	reply TEXT NOT NULL,
	ok BOOLEAN NOT NULL,
	created_at DATETIME NOT NULL,
	PRIMARY KEY (request_id, command)
);
