CREATE TABLE awards_commands (
	request_id VARCHAR(200) NOT NULL,
	command VARCHAR(100) NOT NULL,
	payload_hash VARCHAR(64) NOT NULL,
	reply TEXT NOT NULL,
	ok BOOLEAN NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (request_id, command)
);
CREATE TABLE awards_inbox (
	consumer VARCHAR(100) NOT NULL,
	event_id VARCHAR(200) NOT NULL,
	subject VARCHAR(300) NOT NULL,
	received_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (consumer, event_id)
);
CREATE TABLE awards_outbox (
	seq SERIAL NOT NULL,
	event_id VARCHAR(200) NOT NULL,
	subject VARCHAR(300) NOT NULL,
	payload TEXT NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	published_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (seq),
	UNIQUE (event_id)
);
CREATE INDEX ix_awards_outbox_published_at ON awards_outbox (published_at);
CREATE TABLE awd_certificate (
	code VARCHAR(40) NOT NULL,
	cycle_year INTEGER NOT NULL,
	award_key VARCHAR NOT NULL,
	award_name VARCHAR NOT NULL,
	recipient VARCHAR NOT NULL,
	title VARCHAR,
	path VARCHAR NOT NULL,
	issued_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (code)
);
CREATE INDEX ix_awd_certificate_cycle_year ON awd_certificate (cycle_year);
CREATE TABLE awd_counter (
	cycle_year SERIAL NOT NULL,
	announcements INTEGER NOT NULL,
	PRIMARY KEY (cycle_year)
);
CREATE TABLE awd_result (
	cycle_year SERIAL NOT NULL,
	categories JSON NOT NULL,
	rankings JSON NOT NULL,
	ceremony JSON NOT NULL,
	files JSON NOT NULL,
	summary JSON NOT NULL,
	announcement_no VARCHAR,
	PRIMARY KEY (cycle_year)
);
CREATE TABLE awd_shortlist (
	cycle_year INTEGER NOT NULL,
	stage VARCHAR(32) NOT NULL,
	announcement_no VARCHAR NOT NULL,
	digest VARCHAR NOT NULL,
	rows JSON NOT NULL,
	PRIMARY KEY (cycle_year, stage)
);
CREATE TABLE awd_wbk (
	cycle_year INTEGER NOT NULL,
	unit_code VARCHAR(64) NOT NULL,
	unit_name VARCHAR,
	agency_code VARCHAR,
	decision VARCHAR NOT NULL,
	total FLOAT,
	PRIMARY KEY (cycle_year, unit_code)
);
